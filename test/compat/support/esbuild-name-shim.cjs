// Defines esbuild's `__name` helper in every node process berthd starts in the compatibility
// suite. berthd runs from source under tsx, whose esbuild transform wraps functions in
// `__name(...)`; @berth/runtime's DNS server is started as `node -e <function>.toString()`, so
// its source carries `__name` calls that a plain node process does not define. (Reported to
// the runtime's network engineer; a dist build has no such calls.)
if (typeof globalThis.__name !== 'function') {
  globalThis.__name = (target, value) => Object.defineProperty(target, 'name', { value, configurable: true });
}
