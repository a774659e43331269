import { describeAttacks } from './attack-suite.ts'
import { ESCAPE_ATTACKS } from './escape-attacks.ts'
import { HOSTILE_VALUE_ATTACKS } from './hostile-value-attacks.ts'

// The same catalogue as host-boundary.test.ts, on the isolate engine.
describeAttacks('escapes from the sandbox to the host', ESCAPE_ATTACKS, 'isolate')
describeAttacks('hostile values handed back to the host', HOSTILE_VALUE_ATTACKS, 'isolate')
