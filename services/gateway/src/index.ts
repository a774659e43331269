export { type AppOptions, createApp, DEFAULT_MAX_BODY_BYTES } from './app.ts'
export {
  type Authenticator,
  DEFAULT_TENANT,
  type Principal,
  SCOPES,
  type Scope,
  TokenAuthenticator,
} from './auth.ts'
export { modelSettingsFrom } from './model-settings.ts'
export {
  exposedEnvironment,
  type NodeServerOptions,
  type RunningServer,
  startNodeServer,
} from './server.ts'
