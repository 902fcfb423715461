export { startFakeCozeServer } from './server.js';
export { loadScenario, parseScenario } from './scenario.js';
export type { ParsedScenario, Scenario } from './scenario.js';
export type { FakeCozeServer, FakeCozeServerOptions, RecordedRequest } from './types.js';
export { listNodeOutputs } from './expected-outputs.js';
export type { ExpectedNodeOutput } from './expected-outputs.js';
export { generateText } from './text-generator.js';
export type { TextSpec } from './text-generator.js';
