import { describeAttacks } from './attack-suite.ts'
import { MEMORY_OUTPUT_ATTACKS } from './memory-output-attacks.ts'
import { RUNAWAY_ATTACKS } from './runaway-attacks.ts'

describeAttacks('runaway CPU, job queues and recursion', RUNAWAY_ATTACKS, 'isolate')
describeAttacks('memory bombs and output floods', MEMORY_OUTPUT_ATTACKS, 'isolate')
