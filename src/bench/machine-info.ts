import os from 'node:os';

/** Machine, Node version and date of a bench run, for the report header. */
export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGib: number;
  nodeVersion: string;
  platform: string;
  date: string;
}

export function describeMachine(now = new Date()): MachineInfo {
  return {
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.cpus().length,
    memoryGib: os.totalmem() / 1024 ** 3,
    nodeVersion: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    date: now.toISOString(),
  };
}
