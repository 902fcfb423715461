import path from 'node:path';

import type { ExecutionManifest } from '../archive/manifest.js';
import { escapeControlCharacters } from '../http/redact.js';

/** Builds one execution of the `--json` document, ids as strings. */
export function executionSummary(m: ExecutionManifest, outDir: string) {
  return {
    workflow_id: m.workflow_id,
    execute_id: m.execute_id,
    execute_status: m.execute_status,
    complete: m.complete,
    folder: path.join(outDir, m.workflow_id, m.execute_id),
    manifest: path.join(outDir, m.workflow_id, m.execute_id, 'manifest.json'),
    totals: m.totals,
    error: m.error ?? null,
    stopped: m.stopped ?? null,
    flagged: m.nodes
      .filter((node) => node.possibly_incomplete)
      .map((node) => ({ title: node.title, file: node.file, bytes: node.bytes, reasons: node.incomplete_reasons })),
    failed: m.nodes
      .filter((node) => node.status === 'failed' || node.status === 'expired')
      .map((node) => ({ title: node.title, node_execute_uuid: node.node_execute_uuid ?? null, status: node.status, error: node.error ?? null })),
  };
}

/** Builds a short report for a person at a terminal: totals, flagged and failed entries. */
export function textSummary(manifests: readonly ExecutionManifest[], outDir: string): string {
  const lines: string[] = [];
  for (const m of manifests) {
    const t = m.totals;
    const folder = path.join(outDir, m.workflow_id, m.execute_id);
    lines.push(
      `${m.execute_id} (${m.execute_status ?? 'unknown'}): ${t.saved}/${t.entries} saved, ${t.failed} failed, ` +
        `${t.pending} pending, ${t.expired} expired, ${t.flagged} flagged, ${t.bytes} bytes -> ${folder}`,
    );
    if (m.error) lines.push(`  error: ${m.error.message}${m.error.logid ? ` (logid ${m.error.logid})` : ''}`);
    if (m.stopped) lines.push(`  stopped: ${m.stopped}`);
    for (const node of m.nodes) {
      if (node.possibly_incomplete) lines.push(`  flagged: ${node.file} (${node.incomplete_reasons.join(', ')})`);
      if (node.status === 'failed' || node.status === 'expired') {
        const logid = node.error?.logid ? ` logid ${node.error.logid}` : '';
        // Inline outputs and node runs listed in an unexpected shape have no uuid to show.
        const parts = [node.title, node.node_execute_uuid, node.error?.message ?? node.reason].filter((part) => part !== undefined && part !== '');
        lines.push(`  ${node.status}: ${parts.join(' ')}${logid}`);
      }
    }
  }
  // Titles come from the remote service; a raw escape sequence could rewrite the terminal.
  return `${lines.map(escapeControlCharacters).join('\n')}\n`;
}
