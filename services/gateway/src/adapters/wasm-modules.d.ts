// Wasm imports, as the Worker build (wrangler's CompiledWasm rule) gives them: compiled modules.
declare module '@jitl/quickjs-wasmfile-release-sync/wasm' {
  const compiled: WebAssembly.Module
  export default compiled
}

// The Workers runtime's own module, as far as the Worker uses it.
declare module 'cloudflare:workers' {
  export class RpcTarget {}
}
