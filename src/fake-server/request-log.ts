import type { RecordedRequest } from './types.js';

type RequestFilter = Partial<Pick<RecordedRequest, 'route' | 'executeId' | 'nodeExecuteUuid'>>;

/** Every request the server received, in arrival order, with the queries tests need. */
export class RequestLog {
  readonly requests: RecordedRequest[] = [];

  /** Appends a request and gives it the next sequence number. */
  add(request: Omit<RecordedRequest, 'seq'>): RecordedRequest {
    const recorded: RecordedRequest = { seq: this.requests.length + 1, ...request };
    this.requests.push(recorded);
    return recorded;
  }

  count(filter: RequestFilter = {}): number {
    return this.requests.filter(
      (request) =>
        (filter.route === undefined || request.route === filter.route) &&
        (filter.executeId === undefined || request.executeId === filter.executeId) &&
        (filter.nodeExecuteUuid === undefined || request.nodeExecuteUuid === filter.nodeExecuteUuid),
    ).length;
  }

  /** Counts requests in the busiest half-open window [t, t + windowMs) over arrival times. */
  maxInWindow(windowMs: number): number {
    const times = this.requests.map((request) => request.receivedAt).sort((a, b) => a - b);
    let max = 0;
    let start = 0;

    for (let end = 0; end < times.length; end += 1) {
      while ((times[end] ?? 0) - (times[start] ?? 0) >= windowMs) {
        start += 1;
      }
      max = Math.max(max, end - start + 1);
    }

    return max;
  }

  overLimitCount(): number {
    return this.requests.filter((request) => request.overLimit).length;
  }
}
