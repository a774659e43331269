import type { CordonSandbox } from './cordon-sandbox.ts'

/** Instance ids one scope remembers; past that the least recently used is forgotten (its session idles out). */
const MAX_IDS = 1000

/**
 * The drivers of this process, by scope (service, agent, key, idle timeout) and Flue instance id.
 * Flue renders a new factory for every message and calls `createSandbox` each time, so the mapping
 * from an id to its Cordon session has to outlive any one factory object.
 */
const scopes = new Map<string, Map<string, CordonSandbox>>()

/** The driver for `id` in `scope`, made by `create` the first time. */
export function sharedDriver(scope: string, id: string, create: () => CordonSandbox): CordonSandbox {
  let drivers = scopes.get(scope)
  if (drivers === undefined) {
    drivers = new Map()
    scopes.set(scope, drivers)
  }
  let driver = drivers.get(id)
  if (driver === undefined) driver = create()
  // Re-inserted: a Map keeps insertion order, so the first key is the least recently used.
  drivers.delete(id)
  drivers.set(id, driver)
  if (drivers.size > MAX_IDS) {
    const oldest = drivers.keys().next().value
    if (oldest !== undefined) drivers.delete(oldest)
  }
  return driver
}

/** Forgets one id's driver and returns it (to be closed). */
export function takeDriver(scope: string, id: string): CordonSandbox | undefined {
  const drivers = scopes.get(scope)
  const driver = drivers?.get(id)
  drivers?.delete(id)
  if (drivers?.size === 0) scopes.delete(scope)
  return driver
}

/** Forgets every driver of the scope and returns them (to be closed). */
export function takeDrivers(scope: string): CordonSandbox[] {
  const drivers = [...(scopes.get(scope)?.values() ?? [])]
  scopes.delete(scope)
  return drivers
}
