import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { sarifValidator } from './helpers/sarif.ts'

const root = fileURLToPath(new URL('..', import.meta.url))
const fixtures = 'services/policy/src/review/fixtures'
const scratch = mkdtempSync(join(tmpdir(), 'cordon-review-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

/** Runs the `cordon` bin the workspace links into node_modules/.bin, as `npx cordon` does. */
function cordon(...args: string[]) {
  const result = spawnSync(join(root, 'node_modules/.bin/cordon'), args, { cwd: root, encoding: 'utf8' })
  return { code: result.status, stdout: result.stdout, stderr: result.stderr }
}

function file(name: string, text: string): string {
  const path = join(scratch, name)
  writeFileSync(path, text)
  return path
}

describe('cordon review', () => {
  it('works through npx from the repository root and passes the built-in profiles (exit 0)', () => {
    const result = spawnSync('npx', ['--no-install', 'cordon', 'review', 'sandbox-profiles/'], {
      cwd: root,
      encoding: 'utf8',
    })
    expect(result.stderr).not.toMatch(/error/i)
    expect(result.status).toBe(0)
    expect(result.stdout).toContain('4 reviewed: 0 critical, 0 high')
    expect(result.stdout).toContain('Reach of profile web-reader:')
  })

  it('exits 1 when a finding reaches --fail-on (default high), and 0 when the gate is above it', () => {
    const critical = cordon('review', `${fixtures}/CORDON-NET-001.yaml`)
    expect(critical.code).toBe(1)
    expect(critical.stderr).toContain('1 finding(s) at or above high')
    expect(critical.stdout).toMatch(
      /CRITICAL\s+CORDON-NET-001\s+services\/policy\/src\/review\/fixtures\/CORDON-NET-001.yaml:7:15/,
    )
    const medium = `${fixtures}/CORDON-NET-005.yaml`
    expect(cordon('review', medium).code).toBe(0)
    expect(cordon('review', '--fail-on', 'medium', medium).code).toBe(1)
    expect(cordon('review', '--fail-on', 'critical', `${fixtures}/CORDON-NET-003.yaml`).code).toBe(0)
    expect(cordon('review', '--fail-on', 'none', `${fixtures}/CORDON-NET-001.yaml`).code).toBe(0)
    expect(cordon('review', '--fail-on', 'info', 'sandbox-profiles/').code).toBe(1)
  })

  it('writes JSON whose findings carry a severity', () => {
    const result = cordon('review', '--format', 'json', '--fail-on', 'none', fixtures)
    const report = JSON.parse(result.stdout)
    expect(report.findings.length).toBeGreaterThanOrEqual(23)
    for (const finding of report.findings) {
      expect(['critical', 'high', 'medium', 'low', 'info']).toContain(finding.severity)
      expect(finding).toMatchObject({
        ruleId: expect.any(String),
        pointer: expect.any(String),
        remediation: expect.any(String),
      })
    }
  })

  it('writes SARIF 2.1.0 that validates, with rule metadata, levels and file/line/column locations', () => {
    const result = cordon('review', '--format', 'sarif', '--fail-on', 'none', fixtures)
    const log = JSON.parse(result.stdout)
    expect(sarifValidator()(log)).toEqual([])
    const run = log.runs[0]
    expect(run.tool.driver.rules.length).toBeGreaterThanOrEqual(15)
    expect(run.tool.driver.rules[0]).toMatchObject({
      id: 'CORDON-NET-001',
      shortDescription: { text: expect.any(String) },
      help: { text: expect.any(String) },
      defaultConfiguration: { level: 'error' },
    })
    const result003 = run.results.find((r: { ruleId: string }) => r.ruleId === 'CORDON-NET-003')
    expect(result003).toMatchObject({
      level: 'error',
      locations: [
        {
          physicalLocation: {
            artifactLocation: { uri: `${fixtures}/CORDON-NET-003.yaml` },
            region: { startLine: 8, startColumn: 26 },
          },
        },
      ],
    })
    expect(new Set(run.results.map((r: { level: string }) => r.level))).toEqual(
      new Set(['error', 'warning', 'note']),
    )
  })

  it('resolves a file that extends another reviewed file or a built-in', () => {
    const parent = file('team.yaml', 'name: team\nextends: web-reader\nlimits: { cpuMs: 500 }\n')
    const child = file(
      'team-child.json',
      JSON.stringify({ name: 'team-child', extends: 'team', engines: ['quickjs'] }),
    )
    const result = cordon('review', parent, child)
    expect(result.code).toBe(0)
    expect(result.stdout).toContain('2 reviewed')
  })

  it('reviews an agent in Markdown with its profile', () => {
    const agent = file('agent.md', '---\nname: helper\nsandbox: tool-runner\n---\nYou help.\n')
    const result = cordon('review', '--format', 'json', agent)
    expect(JSON.parse(result.stdout).reach[0]).toMatchObject({ agent: 'helper', profile: 'tool-runner' })
  })

  it.each([
    [
      'a widening child, at its file, line and column',
      'wide.yaml',
      'name: wide\nextends: strict\nlimits:\n  cpuMs: 5000\n',
      /wide\.yaml:4:10: \$\.limits\.cpuMs 5000 is wider than parent "strict" \(1000\)/,
    ],
    [
      'a missing parent',
      'lost.yaml',
      'name: lost\nextends: nowhere\n',
      /lost\.yaml:2:10: \$\.extends parent profile "nowhere" does not exist/,
    ],
    ['malformed YAML', 'broken.yaml', 'name: [\n', /broken\.yaml: malformed YAML/],
    [
      'an unknown key',
      'typo.yaml',
      'name: typo\nextends: strict\nnetwrk: {}\n',
      /typo\.yaml:1:1: \$ Unrecognized key: "netwrk"/,
    ],
  ])('exits 2 for %s', (_what, name, text, message) => {
    const result = cordon('review', file(name, text))
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(message)
  })

  it('exits 2 for a file over 1 MiB and for more than 1000 files', () => {
    expect(cordon('review', file('huge.yaml', `# ${'x'.repeat(1024 * 1024)}\nname: huge\n`)).code).toBe(2)
    const many = mkdtempSync(join(scratch, 'many-'))
    for (let i = 0; i <= 1000; i++) writeFileSync(join(many, `p${i}.yaml`), `name: p${i}\nextends: strict\n`)
    const result = cordon('review', many)
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('more than 1000 files')
  })

  it('exits 2 for bad usage', () => {
    expect(cordon('review').code).toBe(2)
    expect(cordon('review', '--format', 'xml', 'sandbox-profiles/').code).toBe(2)
    expect(cordon('review', '--fail-on', 'severe', 'sandbox-profiles/').code).toBe(2)
    expect(cordon('review', 'no/such/dir').code).toBe(2)
    expect(cordon('review', '--builtins', 'no/such/dir', 'sandbox-profiles/').code).toBe(2)
    expect(cordon('frobnicate').code).toBe(2)
    expect(cordon('help').code).toBe(0)
  })
})

describe('the docs stay true', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')

  it('quotes the current output of cordon review sandbox-profiles/ in the README', () => {
    const quoted = /```\n\$ \.\/cordon review sandbox-profiles\/\n([\s\S]*?)```/.exec(readme)?.[1]
    expect(quoted).toBe(cordon('review', 'sandbox-profiles/').stdout)
  })

  it('shows a README example profile that resolves', () => {
    const example = /```yaml\n(name: docs-reader\n[\s\S]*?)```/.exec(readme)?.[1] ?? ''
    expect(cordon('review', file('docs-reader.yaml', example)).code).toBe(0)
  })

  it('lists every review rule in docs/policy.md', () => {
    const docs = readFileSync(join(root, 'docs/policy.md'), 'utf8')
    const ids = JSON.parse(
      cordon('review', '--format', 'sarif', 'sandbox-profiles/').stdout,
    ).runs[0].tool.driver.rules.map((rule: { id: string }) => rule.id)
    for (const id of ids) expect(docs).toContain(`| \`${id}\` |`)
  })
})
