import { readFileSync } from 'node:fs'
import { SANDBOX_PROTOCOL_VERSION } from '@cordon/executor'
import { describe, expect, it } from 'vitest'

// The Cloudflare deployment's pieces must name one version of @cloudflare/sandbox: the SDK the Worker
// bundles (its client speaks the container's protocol), the container image wrangler.toml deploys, the
// Dockerfile for a custom image, and the protocol version the local stand-in answers.

const read = (path: string) => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8')
const lock = JSON.parse(read('package-lock.json')) as { packages: Record<string, { version?: string }> }
const sdk = lock.packages['node_modules/@cloudflare/sandbox']?.version

describe('the Cloudflare deployment configuration', () => {
  it('pins one @cloudflare/sandbox version across the SDK, the image, the Dockerfile and the local engine', () => {
    expect(sdk).toMatch(/^\d+\.\d+\.\d+$/)
    expect(read('wrangler.toml')).toContain(`image = "docker.io/cloudflare/sandbox:${sdk}-python"`)
    expect(read('docker/sandbox/Dockerfile')).toContain(`FROM docker.io/cloudflare/sandbox:${sdk}-python`)
    expect(SANDBOX_PROTOCOL_VERSION).toBe(sdk)
  })

  it('declares every binding the Worker reads', () => {
    const toml = read('wrangler.toml')
    for (const line of [
      'name = "TENANTS"',
      'name = "SANDBOX"',
      'binding = "LOADER"',
      'class_name = "Sandbox"',
    ]) {
      expect(toml).toContain(line)
    }
    const worker = read('services/gateway/src/adapters/worker.ts')
    // The container class is the SDK's, without the network of its own the SDK gives it by default,
    // its requests handed to Cordon's outbound handler through the exported proxy entry point.
    expect(worker).toContain('export class Sandbox extends SandboxContainer')
    expect(worker).toContain('override enableInternet = false')
    expect(worker).toContain("export { ContainerProxy } from '@cloudflare/sandbox'")
    expect(worker).toContain('export class TenantObject')
  })
})
