export { type CommandResult, reviewCommand } from './review-command.ts'
