/** The endpoint a request reaches, with the ids from its path. */
export interface RouteMatch {
  route: 'run_history' | 'execute_node' | 'unknown';
  path: string;
  workflowId?: string;
  executeId?: string;
  nodeExecuteUuid?: string;
}

const RUN_HISTORY = /^\/v1\/workflows\/([^/]+)\/run_histories\/([^/]+)$/;
const EXECUTE_NODE = /^\/v1\/workflows\/([^/]+)\/run_histories\/([^/]+)\/execute_nodes\/([^/]+)$/;

/** Matches a request against the two Coze GET endpoints; anything else is `unknown`. */
export function matchRoute(method: string, url: string): RouteMatch {
  const path = url.split('?', 1)[0] ?? '';
  if (method !== 'GET') {
    return { route: 'unknown', path };
  }

  const node = EXECUTE_NODE.exec(path);
  if (node !== null) {
    const [workflowId, executeId, nodeExecuteUuid] = decodeSegments(node.slice(1));
    if (workflowId !== undefined && executeId !== undefined && nodeExecuteUuid !== undefined) {
      return { route: 'execute_node', path, workflowId, executeId, nodeExecuteUuid };
    }
  }

  const history = RUN_HISTORY.exec(path);
  if (history !== null) {
    const [workflowId, executeId] = decodeSegments(history.slice(1));
    if (workflowId !== undefined && executeId !== undefined) {
      return { route: 'run_history', path, workflowId, executeId };
    }
  }

  return { route: 'unknown', path };
}

// A malformed percent escape makes the path match no route, as it would on a real server.
function decodeSegments(segments: string[]): (string | undefined)[] {
  return segments.map((segment) => {
    try {
      return decodeURIComponent(segment);
    } catch {
      return undefined;
    }
  });
}
