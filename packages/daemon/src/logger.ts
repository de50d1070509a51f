export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'fatal';

const order: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3, fatal: 4 };

/** The daemon's own log: one line per event, `time level message`, on stderr. */
export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export function createLogger(level: LogLevel = 'info', write: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  const at = (l: LogLevel) => (message: string) => {
    if (order[l] < order[level]) return;
    write(`time="${new Date().toISOString()}" level=${l} msg=${JSON.stringify(message)}\n`);
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

export function isLogLevel(value: string): value is LogLevel {
  return value in order;
}
