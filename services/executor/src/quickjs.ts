// `@cordon/executor/quickjs`: the QuickJS engine without anything only Node can load, for runtimes
// that bring their own build (a Worker imports the wasm as a module) and their own CPU meter.
export {
  type CpuMeter,
  interruptCountMeter,
  MICROS_PER_INTERRUPT_CHECK,
} from './engines/quickjs/cpu-meter.ts'
export { PINNED_LAYOUT, prebuiltQuickJS, type QuickJSBuild } from './engines/quickjs/quickjs-build.ts'
export { QuickJSEngine, type QuickJSEngineOptions } from './engines/quickjs/quickjs-engine.ts'
