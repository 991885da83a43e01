// Index of server names (exact and "*.suffix") to route positions, so lookups cost O(labels), not O(routes).

export class NameIndex {
  private readonly exact = new Map<string, number[]>();
  /** Keyed by the suffix after "*.": "*.bjk.is" is stored under "bjk.is". */
  private readonly wildcard = new Map<string, number[]>();

  /** Routes must be added in ascending index order so every list stays sorted. */
  add(pattern: string, index: number): void {
    const wild = pattern.startsWith('*.');
    const table = wild ? this.wildcard : this.exact;
    const key = wild ? pattern.slice(2) : pattern;
    const list = table.get(key);
    if (list === undefined) table.set(key, [index]);
    else if (list[list.length - 1] !== index) list.push(index);
  }

  /**
   * Appends to out every list of route positions whose pattern matches name (each list ascending).
   * name must be lowercased already. out is the caller's to reuse.
   */
  lookup(name: string, out: (readonly number[])[]): void {
    const exact = this.exact.get(name);
    if (exact !== undefined) out.push(exact);
    // "*.bjk.is" matches any name ending in ".bjk.is": try every proper suffix after a dot.
    let dot = name.indexOf('.');
    while (dot !== -1) {
      const list = this.wildcard.get(name.slice(dot + 1));
      if (list !== undefined) out.push(list);
      dot = name.indexOf('.', dot + 1);
    }
  }
}
