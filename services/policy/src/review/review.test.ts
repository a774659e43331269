import { readdirSync, readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { resolveInlineProfile, resolveInlineToolProfile, validateAgent } from '../agent.ts'
import { parseDocument } from '../documents.ts'
import type { ResolvedProfile } from '../profile.ts'
import { resolveProfile } from '../resolve.ts'
import { formatReviewText } from './format-text.ts'
import { type ReviewSubject, reviewProfiles } from './review.ts'
import { RULES } from './rules.ts'

const fixtures = new URL('./fixtures/', import.meta.url)
const builtins = new URL('../../../../sandbox-profiles/', import.meta.url)

/** Reads a profile or an agent (a document with `sandbox`) from a YAML file into a review subject. */
function subject(dir: URL, file: string): ReviewSubject {
  const text = readFileSync(new URL(file, dir), 'utf8')
  const parsed = parseDocument(text, 'yaml')
  if (!parsed.ok) throw new Error(`${file}: ${parsed.message}`)
  const source = { file, text, format: 'yaml' as const }
  const value = parsed.value as Record<string, unknown>
  if (!('sandbox' in value)) return { profile: ok(resolveProfile(value)), source }
  const agent = validateAgent(value)
  if (!agent.ok) throw new Error(`${file}: ${JSON.stringify(agent.issues)}`)
  const toolProfiles: Record<string, ResolvedProfile> = Object.create(null)
  for (const tool of agent.agent.tools ?? []) {
    const own = resolveInlineToolProfile(agent.agent, tool)
    if (own !== null) toolProfiles[tool.name] = ok(own)
  }
  const profile = resolveInlineProfile(agent.agent)
  if (profile === null) throw new Error('fixture agents declare their sandbox inline')
  return { profile: ok(profile), agent: agent.agent, toolProfiles, source }
}

function ok(result: ReturnType<typeof resolveProfile>): ResolvedProfile {
  if (!result.ok) throw new Error(JSON.stringify(result.issues))
  return result.profile
}

const rules = Object.values(RULES)
const fixtureFiles = readdirSync(fixtures).filter((f) => f.endsWith('.yaml'))

describe('review rules', () => {
  it('has at least 15 rules, unique stable ids, and one fixture per rule', () => {
    expect(rules.length).toBeGreaterThanOrEqual(15)
    expect(new Set(rules.map((r) => r.id)).size).toBe(rules.length)
    for (const rule of rules) expect(rule.id).toMatch(/^CORDON-[A-Z]+-\d{3}$/)
    expect(fixtureFiles.sort()).toEqual(rules.map((r) => `${r.id}.yaml`).sort())
  })

  it.each(rules.map((rule) => [rule.id, rule] as const))(
    '%s fires on its fixture, at a line of the file',
    (id, rule) => {
      const report = reviewProfiles([subject(fixtures, `${id}.yaml`)])
      const finding = report.findings.find((f) => f.ruleId === id)
      expect(finding).toMatchObject({
        severity: rule.severity,
        remediation: rule.remediation,
        pointer: expect.stringMatching(/^\//),
        location: { file: `${id}.yaml`, line: expect.any(Number), column: expect.any(Number) },
      })
      expect(finding?.location?.line).toBeGreaterThan(1)
    },
  )

  it('points a finding at the line and column of the offending field', () => {
    const report = reviewProfiles([subject(fixtures, 'CORDON-NET-003.yaml')])
    const finding = report.findings.find((f) => f.ruleId === 'CORDON-NET-003')
    expect(finding).toMatchObject({
      pointer: '/network/allowPrivateAddresses',
      location: { line: 8, column: 26 },
    })
  })
})

describe('review of tools with their own profile', () => {
  const text = `name: exfil-agent
sandbox: tool-runner
tools:
  - name: exfil
    description: Sends things
    language: javascript
    code: 'export default async (x) => (await fetch("https://example.com", { method: "POST" })).status'
    sandbox:
      engines: [quickjs]
      languages: [javascript]
      limits: { cpuMs: 100, wallMs: 1000, memoryMb: 16, outputBytes: 1024, bindingCalls: 10 }
      network:
        allow:
          - { host: '*', methods: [GET, POST] }
        allowPrivateAddresses: true
      secrets:
        TOKEN: { from: 'env:TOKEN', hosts: [api.example.com] }
`

  function agentSubject(): ReviewSubject {
    const parsed = parseDocument(text, 'yaml')
    if (!parsed.ok) throw new Error(parsed.message)
    const agent = validateAgent(parsed.value)
    if (!agent.ok) throw new Error(JSON.stringify(agent.issues))
    const builtin = parseDocument(readFileSync(new URL('tool-runner.yaml', builtins), 'utf8'), 'yaml')
    if (!builtin.ok) throw new Error(builtin.message)
    const toolProfiles: Record<string, ResolvedProfile> = Object.create(null)
    const tool = agent.agent.tools?.[0]
    if (tool === undefined) throw new Error('fixture')
    toolProfiles.exfil = ok(resolveInlineToolProfile(agent.agent, tool) ?? resolveProfile(null))
    return {
      profile: ok(resolveProfile(builtin.value)),
      agent: agent.agent,
      toolProfiles,
      source: { file: 'agent.yaml', text, format: 'yaml' },
    }
  }

  it('reviews the tool profile like any other, locating findings inside the tool sandbox', () => {
    const report = reviewProfiles([agentSubject()])
    const byRule = (id: string) => report.findings.find((f) => f.ruleId === id)
    expect(byRule('CORDON-NET-001')).toMatchObject({
      severity: 'critical',
      tool: 'exfil',
      profile: 'exfil-agent-exfil',
      pointer: '/network/allow/0/host',
      message: 'tool "exfil": host "*" allows every host',
      location: { file: 'agent.yaml', line: 14 },
    })
    expect(byRule('CORDON-NET-003')).toMatchObject({ tool: 'exfil', location: { line: 15 } })
    expect(byRule('CORDON-SEC-003')).toMatchObject({ severity: 'critical', tool: 'exfil' })
    expect(byRule('CORDON-TOOL-001')).toMatchObject({
      pointer: '/tools/0',
      tool: 'exfil',
      location: { line: 4 },
      message: expect.stringContaining('"exfil"'),
    })
    expect(byRule('CORDON-TOOL-002')).toBeUndefined()
  })

  it('counts the tool in the reach, as granted through "*"', () => {
    const reach = reviewProfiles([agentSubject()]).reach[0]
    expect(reach?.entries.map((e) => e.via)).toEqual(['code', 'tool exfil'])
  })
})

describe('public suffixes (CORDON-NET-002)', () => {
  const flagged = (host: string) =>
    reviewProfiles([
      {
        profile: ok(
          resolveProfile({
            name: 'p',
            engines: ['quickjs'],
            languages: ['javascript'],
            limits: { cpuMs: 1, wallMs: 1, memoryMb: 4, outputBytes: 64, bindingCalls: 1 },
            network: { allow: [{ host }] },
          }),
        ),
      },
    ]).findings.some((f) => f.ruleId === 'CORDON-NET-002')

  it.each([
    '*.com',
    '*.co.nz',
    '*.github.io',
    '*.s3.us-east-1.amazonaws.com',
    '*.blob.core.windows.net',
    '*.us-east-1.amazonaws.com',
    '*.nip.io',
    '*.ngrok.app',
    '*.internal',
  ])('flags %s', (host) => expect(flagged(host)).toBe(true))

  it.each(['*.example.com', '*.mycompany.github.io', '*.cdn.example.co.uk', 'github.io'])(
    'does not flag %s',
    (host) => {
      expect(flagged(host)).toBe(false)
    },
  )
})

describe('review of the built-in profiles', () => {
  const files = readdirSync(builtins).filter((f) => f.endsWith('.yaml'))

  it('ships strict, web-reader, tool-runner and data-analysis', () => {
    expect(files.sort()).toEqual(['data-analysis.yaml', 'strict.yaml', 'tool-runner.yaml', 'web-reader.yaml'])
  })

  it.each(files)('%s has no high or critical finding', (file) => {
    const report = reviewProfiles([subject(builtins, file)])
    expect(report.findings.filter((f) => f.severity === 'critical' || f.severity === 'high')).toEqual([])
  })
})

describe('reach', () => {
  it('survives tools named like Object.prototype members', () => {
    const sandbox = {
      engines: ['quickjs'],
      languages: ['javascript'],
      limits: { cpuMs: 1, wallMs: 1, memoryMb: 4, outputBytes: 64, bindingCalls: 1 },
    }
    const tool = (name: string) => ({
      name,
      description: 'd',
      language: 'javascript',
      code: 'export default 1',
      sandbox: { ...sandbox, network: { allow: [{ host: 'x.example' }] } },
    })
    const agent = validateAgent(
      JSON.parse(
        JSON.stringify({
          name: 'odd',
          sandbox: { ...sandbox, tools: ['constructor', '__proto__', 'toString'] },
          tools: [tool('constructor'), tool('__proto__')],
        }),
      ),
    )
    if (!agent.ok) throw new Error(JSON.stringify(agent.issues))
    const toolProfiles: Record<string, ResolvedProfile> = Object.create(null)
    for (const t of agent.agent.tools ?? [])
      toolProfiles[t.name] = ok(resolveInlineToolProfile(agent.agent, t) ?? resolveProfile(null))
    const report = reviewProfiles([
      {
        profile: ok(resolveInlineProfile(agent.agent) ?? resolveProfile(null)),
        agent: agent.agent,
        toolProfiles,
      },
    ])
    expect(report.reach[0]?.entries.map((e) => e.via)).toEqual(['code', 'tool constructor', 'tool __proto__'])
    expect(report.findings.filter((f) => f.ruleId === 'CORDON-TOOL-001')).toHaveLength(2)
    expect(report.findings.filter((f) => f.ruleId === 'CORDON-TOOL-002').map((f) => f.message)).toEqual([
      'tool "toString" is granted but not declared',
    ])
  })

  it('is the union of what the code and the tools it may call can touch', () => {
    const report = reviewProfiles([subject(fixtures, 'CORDON-TOOL-001.yaml')])
    expect(report.reach[0]?.entries.map((e) => [e.via, e.egress])).toEqual([
      ['code', []],
      ['tool lookup', ['GET,HEAD https://dict.example.com:443/**']],
    ])
  })

  it('is stated in the text report, with a summary line', () => {
    const text = formatReviewText(reviewProfiles([subject(fixtures, 'CORDON-NET-001.yaml')]))
    expect(text).toContain('CRITICAL  CORDON-NET-001  CORDON-NET-001.yaml:7:15')
    expect(text).toContain('egress     GET,HEAD https://*:443/**')
    expect(text).toContain('1 reviewed: 1 critical,')
  })
})
