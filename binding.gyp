{
  "targets": [
    {
      "target_name": "sni_mux",
      "sources": ["native/sni_mux.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror"],
      "cflags!": ["-fno-exceptions"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
