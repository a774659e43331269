import { describeAttacks } from './attack-suite.ts'
import { ESCAPE_ATTACKS } from './escape-attacks.ts'
import { HOSTILE_VALUE_ATTACKS } from './hostile-value-attacks.ts'

// One server for this file; each attack is followed by a fresh `1 + 1` on the same server.
describeAttacks('escapes from the sandbox to the host', ESCAPE_ATTACKS, 'quickjs')
describeAttacks('hostile values handed back to the host', HOSTILE_VALUE_ATTACKS, 'quickjs')
