/**
 * @berth/daemon — berthd, the Docker Engine API server composing the berth libraries.
 */
export const packageName = '@berth/daemon';

export { startDaemon, DEFAULT_SOCKET, DEFAULT_DATA_ROOT, DEFAULT_EXEC_ROOT } from './daemon.js';
export type { DaemonOptions, DaemonTlsOptions, RunningDaemon } from './daemon.js';
export { parseDaemonArgs, DaemonArgsError, DAEMON_USAGE, DEFAULT_CONFIG_FILE } from './args.js';
export type { ParsedDaemonArgs } from './args.js';
export { API_VERSION, MIN_API_VERSION, ENGINE_VERSION } from './api/version.js';
export {
  DaemonError,
  NoSuchContainerError,
  NoSuchExecError,
  NoSuchImageError,
  InvalidParameterError,
  ConflictError,
  NotModifiedError,
  statusForCategory,
} from './errors.js';
export { createLogger } from './logger.js';
export type { Logger, LogLevel } from './logger.js';
export type { ImageBuilder, BuildRequest, BuildMessage } from './engine/build.js';
export type { EngineEvent } from './state/events.js';
