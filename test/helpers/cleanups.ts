import { startFakeCozeServer, type FakeCozeServer, type Scenario } from '../../src/fake-server/index.js';
import { makeTempDir } from './run-cli.js';

/** Collects cleanups of servers and folders, to run after each test. */
export class Cleanups {
  private readonly tasks: (() => Promise<void>)[] = [];

  async server(scenario: Scenario): Promise<FakeCozeServer> {
    const server = await startFakeCozeServer({ scenario });
    this.tasks.push(() => server.close());
    return server;
  }

  async folder(prefix = 'coze-batch-'): Promise<string> {
    const temp = await makeTempDir(prefix);
    this.tasks.push(temp.remove);
    return temp.dir;
  }

  add(task: () => Promise<void>): void {
    this.tasks.push(task);
  }

  async run(): Promise<void> {
    await Promise.all(this.tasks.splice(0).map((task) => task()));
  }
}
