import type { ReviewReport } from './review.ts'

/**
 * The review as a human-readable table: one row per finding (severity, rule, where, message), then
 * each subject's effective reach, then a one-line summary.
 */
export function formatReviewText(report: ReviewReport): string {
  const lines: string[] = []
  if (report.findings.length === 0) lines.push('No findings.')
  else {
    const rows = report.findings.map((f) => [
      f.severity.toUpperCase(),
      f.ruleId,
      f.location === undefined
        ? `${f.agent ?? f.profile}#${f.pointer}`
        : `${f.location.file}:${f.location.line}:${f.location.column}`,
      `${f.title}: ${f.message}`,
    ])
    const header = ['SEVERITY', 'RULE', 'WHERE', 'FINDING']
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)))
    const line = (cells: string[]) =>
      cells
        .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd()
    lines.push(line(header), ...rows.map(line))
  }
  for (const reach of report.reach) {
    lines.push(
      '',
      `Reach of ${reach.agent === undefined ? `profile ${reach.profile}` : `agent ${reach.agent} (profile ${reach.profile})`}:`,
    )
    for (const entry of reach.entries) {
      const via = entry.via === 'code' ? '' : `  via ${entry.via} (profile ${entry.profile})\n`
      lines.push(
        `${via}  engines    ${entry.engines.join(', ')} (${entry.languages.join(', ')})`,
        `  egress     ${entry.egress.length === 0 ? 'none' : entry.egress.join('\n             ')}${entry.privateAddresses ? ' (private addresses allowed)' : ''}`,
        `  secrets    ${entry.secrets.length === 0 ? 'none' : entry.secrets.join('; ')}`,
        `  filesystem ${entry.filesystem}`,
        `  kv         ${entry.kv}`,
        `  tools      ${entry.tools.length === 0 ? 'none' : entry.tools.join(', ')}`,
      )
    }
  }
  const s = report.summary
  lines.push(
    '',
    `${s.subjects} reviewed: ${s.critical} critical, ${s.high} high, ${s.medium} medium, ${s.low} low, ${s.info} info`,
  )
  return `${lines.join('\n')}\n`
}
