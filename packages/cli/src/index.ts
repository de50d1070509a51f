// Public API of @berth/cli: run the berth command in-process, or get its command tree.

export { main } from './main.js';
export { buildProgram } from './program.js';
export type { ProgramState } from './program.js';
export { createCli, ExitError } from './context.js';
export type { Cli, Opts } from './context.js';
export { renderCliDocs, walkCommands } from './docs/reference.js';
export { bashCompletion, zshCompletion } from './docs/completion.js';
export { parseTemplate, TemplateError, toText } from './format/template.js';
export type { Template } from './format/template.js';
export { renderList, renderObject } from './format/list.js';
export { alignTable } from './format/table.js';
export { ProgressRenderer, progressBar } from './format/progress.js';
export type { ProgressOutput } from './format/progress.js';
export { humanSize, binarySize, humanDuration, timeAgo, goTime, parseBytes, shortId } from './format/human.js';
