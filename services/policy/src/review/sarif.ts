import type { ReviewReport } from './review.ts'
import { RULES, type Severity } from './rules.ts'

const LEVEL: Record<Severity, 'error' | 'warning' | 'note'> = {
  critical: 'error',
  high: 'error',
  medium: 'warning',
  low: 'note',
  info: 'note',
}

/** GitHub code scanning reads this 0-10 score to rank security results. */
const SECURITY_SEVERITY: Record<Severity, string> = {
  critical: '9.5',
  high: '8.0',
  medium: '5.5',
  low: '3.0',
  info: '1.0',
}

const RULE_LIST = Object.values(RULES)

/**
 * The review as a SARIF 2.1.0 log: every rule in `tool.driver.rules` (id, descriptions, help, default
 * level, security-severity), one result per finding with its level, message and location: the file,
 * line and column where the source was a file, and always the JSON pointer as a logical location.
 */
export function toSARIF(report: ReviewReport, toolVersion: string): Record<string, unknown> {
  return {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'cordon-review',
            version: toolVersion,
            rules: RULE_LIST.map((rule) => ({
              id: rule.id,
              name: rule.title.replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) =>
                (c ?? '').toUpperCase(),
              ),
              shortDescription: { text: rule.title },
              fullDescription: { text: rule.description },
              help: { text: rule.remediation },
              defaultConfiguration: { level: LEVEL[rule.severity] },
              properties: {
                tags: ['security'],
                severity: rule.severity,
                'security-severity': SECURITY_SEVERITY[rule.severity],
              },
            })),
          },
        },
        results: report.findings.map((finding) => ({
          ruleId: finding.ruleId,
          ruleIndex: RULE_LIST.findIndex((rule) => rule.id === finding.ruleId),
          level: LEVEL[finding.severity],
          message: { text: `${finding.message}. ${finding.remediation}` },
          locations: [
            {
              ...(finding.location === undefined
                ? {}
                : {
                    physicalLocation: {
                      artifactLocation: { uri: finding.location.file },
                      region: { startLine: finding.location.line, startColumn: finding.location.column },
                    },
                  }),
              logicalLocations: [
                {
                  fullyQualifiedName: `profiles/${finding.profile}#${finding.pointer}`,
                  kind: 'member',
                },
              ],
            },
          ],
          // One alert per rule, profile, field and tool, however the findings are ordered.
          partialFingerprints: {
            'cordonFinding/v1': [finding.ruleId, finding.profile, finding.pointer, finding.tool ?? ''].join(
              '|',
            ),
          },
          properties: {
            severity: finding.severity,
            profile: finding.profile,
            pointer: finding.pointer,
            ...(finding.agent === undefined ? {} : { agent: finding.agent }),
            ...(finding.tool === undefined ? {} : { tool: finding.tool }),
          },
        })),
        columnKind: 'utf16CodeUnits',
      },
    ],
  }
}
