import { Command } from 'commander';

import type { VerifyFinding, VerifyReport } from '../archive/verify-archive.js';
import { EXIT_CODES } from '../exit-codes.js';
import type { CliEnvironment } from './cli-environment.js';

interface VerifyFlags {
  json?: boolean;
  requireComplete?: boolean;
}

/** Declares `verify`: checks an archive against its manifests and reports what changed. */
export function verifyCommand(environment: CliEnvironment): Command {
  return new Command('verify')
    .description('Check every manifest.json under DIR: each saved file must exist with the recorded size and sha256, and execution folders must contain no file their manifest does not list.')
    .argument('<dir>', 'archive folder, usually the --out folder of fetch')
    .option('--json', 'print the report as JSON to stdout')
    .option('--require-complete', 'exit 1 also when anything is not complete: an entry not saved, an execution error, a run that stopped early')
    .addHelpText(
      'after',
      '\nExit codes: 0 intact (and complete, with --require-complete); 1 missing, altered, unexpected, temporary or invalid files, or with --require-complete anything not complete; 2 DIR missing, or holding neither a manifest nor a folder laid out as an execution\'s.',
    )
    .action(async (dir: string, flags: VerifyFlags) => {
      // Imported here, not at the top, so `--help` does not load them.
      const { verifyArchive } = await import('../archive/verify-archive.js');
      const { plural, terminalText } = await import('../batch/batch-summary.js');
      const { jsonForReaders } = await import('../http/redact.js');

      const report = await verifyArchive(dir);
      environment.stdout.write(flags.json ? `${jsonForReaders(report, 2)}\n` : terminalText(verifyLines(report, plural)));
      const passed = flags.requireComplete === true ? report.complete : report.intact;
      environment.exitCode = passed ? EXIT_CODES.ok : EXIT_CODES.failed;
    });
}

/** Formatter of a count and its noun, from `batch-summary.js`, passed in because that module loads late. */
type Plural = (count: number, noun: string, pluralNoun?: string) => string;

function verifyLines(report: VerifyReport, plural: Plural): string[] {
  const lines = [
    `${report.root}: ${plural(report.manifests, 'manifest')}, ${plural(report.entries_checked, 'saved entry', 'saved entries')} checked, ` +
      `${plural(report.entries_not_saved, 'entry', 'entries')} not saved.`,
  ];
  const groups: Array<[string, VerifyFinding[]]> = [
    ['missing', report.missing],
    ['altered', report.altered],
    ['unexpected', report.unexpected],
    ['temporary', report.temporary],
    ['invalid', report.invalid],
  ];
  for (const [label, findings] of groups) {
    for (const finding of findings) lines.push(`${label}: ${finding.path} (${findingDetail(label, finding)})`);
  }
  const problems = lines.length - 1;
  lines.push(headline(report, problems, plural));
  // Intact means that every saved file matches. An entry not saved yet is no damage, but it is not archived either.
  if (report.entries_not_saved > 0) lines.push(notSavedLine(report, plural));
  for (const { manifest, message } of report.execution_errors) lines.push(`Not complete: ${manifest}: ${message}`);
  for (const { manifest, reason } of report.unfinished_runs) lines.push(`Not complete: ${manifest}: ${reason}`);
  return lines;
}

/**
 * Returns the verdict line. Temporary files alone, which a killed run leaves, harm no saved file,
 * so they are not called damage, though the exit code is still 1.
 */
function headline(report: VerifyReport, problems: number, plural: Plural): string {
  if (report.intact) return 'Archive intact.';
  if (problems > 0 && report.temporary.length === problems) {
    return `No damage, but ${plural(problems, 'temporary file')} left by a stopped or killed run: the next fetch of each execution removes them.`;
  }
  return `Archive damaged: ${plural(problems, 'problem')}.`;
}

/** Returns the line on entries not saved, saying which of them a re-run can still fetch. */
function notSavedLine(report: VerifyReport, plural: Plural): string {
  const line = refetchLine(report, plural);
  const unwritable = report.entries_unwritable;
  if (unwritable === 0) return line;
  const verb = unwritable === 1 ? 'its file' : 'their files';
  return `${line} ${unwritable} of them failed because ${verb} could not be written: fix what fetch names, such as a folder in a file's place, before the re-run.`;
}

function refetchLine(report: VerifyReport, plural: Plural): string {
  const { entries_not_saved: notSaved, entries_expired: expired, entries_malformed: malformed, entries_past_retention: pastRetention } = report;
  const head = `Not complete: ${plural(notSaved, 'entry', 'entries')} not saved; fetch reports why.`;
  if (malformed === 0 && pastRetention === 0) {
    if (expired === 0) return `${head} A re-run within 24 hours of the run fetches ${notSaved === 1 ? 'it' : 'them'}.`;
    if (expired === notSaved) return `${head} ${notSaved === 1 ? 'It' : 'They'} expired in Coze, so no re-run can fetch ${notSaved === 1 ? 'it' : 'them'}.`;
    return `${head} ${expired} of them expired in Coze, so no re-run can fetch those; a re-run within 24 hours of the run fetches the others.`;
  }

  // Every group that no re-run can fetch, as "1 of them is ..., 2 expired in Coze and 3 belong to ...".
  const groups: Array<[number, string]> = [
    [malformed, `${malformed === 1 ? 'is' : 'are'} listed in the run history in an unexpected shape`],
    [expired, 'expired in Coze'],
    [pastRetention, pastRetention === 1 ? 'belongs to an execution that ran more than 24 hours ago' : 'belong to executions that ran more than 24 hours ago'],
  ];
  const phrases = groups.filter(([count]) => count > 0).map(([count, text], index) => `${count}${index === 0 ? ' of them' : ''} ${text}`);
  const lost = phrases.length === 1 ? phrases[0] : `${phrases.slice(0, -1).join(', ')} and ${phrases.at(-1)}`;
  const unreachable = malformed + expired + pastRetention;
  const others = notSaved - unreachable;
  const rest = others === 0 ? '' : '; a re-run within 24 hours of the run fetches the others';
  return `${head} ${lost}, so no re-run can fetch ${unreachable === 1 ? 'it' : 'those'}${rest}.`;
}

/** The fetch that brings back a missing or altered output, which Coze keeps for 24 hours after the run. */
const REFETCH = 'a fetch of this execution within 24 hours of its run';

/** Advice on an output that Coze no longer has. */
const DELETED = 'Coze no longer has this output, so no fetch can save it again: restore it from a backup';

/**
 * Returns a finding's reason with what to do about it. The other findings' reasons carry their
 * own advice. These keep short reasons in `--json`, where scripts match them.
 */
function findingDetail(label: string, finding: VerifyFinding): string {
  const deleted = finding.refetchable === false;
  // Inline outputs come from the run history, which a fetch reads again whatever the age.
  const refetch = finding.entry_source === 'inline' ? 'a fetch of this execution' : REFETCH;
  const saveAgain = deleted ? DELETED : `${refetch} saves it again`;
  if (finding.reason === 'size differs') return `size ${finding.actual_bytes}, manifest says ${finding.expected_bytes}; ${saveAgain}`;
  // Coze documents its 24 hours for output-node data only, so this advice, like that for a missing run history, names no deadline.
  if (finding.reason === 'run-history sha256 differs') return `sha256 ${finding.actual_sha256}, manifest says ${finding.expected_sha256}; a fetch of this execution saves it again`;
  if (finding.reason === 'sha256 differs') return `sha256 ${finding.actual_sha256}, manifest says ${finding.expected_sha256}; ${saveAgain}`;
  if (label !== 'missing') return finding.reason;

  if (finding.reason === 'run-history file not found') return `${finding.reason}; a fetch of this execution saves it again`;
  // A fetch cannot rename its file over a folder, so that has to move first.
  if (finding.reason !== 'file not found') return `${finding.reason}; ${deleted ? DELETED : `once it is moved out of the way, ${refetch} saves the file`}`;
  return `${finding.reason}; ${saveAgain}`;
}
