import { reviewCommand } from './review-command.ts'

const USAGE = `usage: cordon review [--format text|json|sarif] [--fail-on critical|high|medium|low|info|none]
                     [--builtins <dir>] <files or dirs...>

Reviews sandbox profiles and agent declarations (YAML, JSON, Markdown) for risk.
  --format     text (a table, default), json, or sarif (SARIF 2.1.0)
  --fail-on    exit 1 when a finding is at least this severe (default: high; none never fails)
  --builtins   profiles that reviewed files may extend (default: the repository's sandbox-profiles/)
Exit codes: 0 no finding at or above --fail-on, 1 there is one, 2 bad usage or a file that does not
parse or resolve.
`

const [command, ...args] = process.argv.slice(2)
try {
  run()
} catch (error) {
  // Exit 1 means "findings at or above --fail-on": a failure of the tool itself must not look like that.
  process.stderr.write(`cordon: internal error: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exitCode = 2
}

function run(): void {
  switch (command) {
    case 'review': {
      const result = reviewCommand(args)
      if (result.stdout !== '') process.stdout.write(result.stdout)
      if (result.stderr !== '') process.stderr.write(result.stderr)
      process.exitCode = result.exitCode
      break
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE)
      process.exitCode = command === undefined ? 2 : 0
      break
    default:
      process.stderr.write(`cordon: unknown command "${command}"\n${USAGE}`)
      process.exitCode = 2
  }
}
