// The one TLS record sni-mux ever writes: a fatal unrecognized_name alert for a ClientHello no route takes.

/**
 * Alert record (RFC 8446 §6): content type 21, legacy version 3.3, length 2, level fatal (2),
 * unrecognized_name (112). Clients then report a name error instead of a bare reset. Shared, never written to.
 */
export const UNRECOGNIZED_NAME_ALERT: Readonly<Uint8Array> = new Uint8Array([
  0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x70,
]);
