/**
 * The report of bench/run.mjs: the same figures as console text and as the markdown of bench/RESULTS.md.
 *
 * `results` = { command, quick, settings: {...}, machine: [[label, value]], payloads: [{ id, label }],
 *   rows: [{ id, name, note, processes, byPayload: { [payload]: figures } }], goals: [...],
 *   stream: {...} | null, cgi: {...} | null, cgiBin: {...} | null (lib/cgi-bin.mjs), gitCgi: {...} | null
 *   (lib/git-cgi.mjs), summary: [{ label, bound, ratio, verdict, detail }], warnings: [...], errors: [...] }
 */

const num = (value, digits = 1) => (value === null || value === undefined || Number.isNaN(value) ? 'n/a' : value.toFixed(digits));
const int = (value) => (value === null || value === undefined || Number.isNaN(value) ? 'n/a' : Math.round(value).toLocaleString('en-US'));
const ratio = (value) => (value === null || value === undefined || Number.isNaN(value) ? 'n/a' : `${value.toFixed(2)}x`);

/** The sections of the throughput tables: which rows, the title, the header of the ratio column. */
const SECTIONS = [
  { id: 'nginx', title: 'behind one nginx', ratioHeader: 'vs Node http' },
  { id: 'direct', title: 'direct HTTP, no nginx (wrk straight at the server)', ratioHeader: 'vs raw node:http' },
];

/** --instructions: thousands of user-space instructions per hello request of the serving process. */
const instructionCell = (row) => (!row.instructions ? '-' : row.instructions.error ? 'failed' : (row.instructions.perRequest / 1000).toFixed(1));
/** GC share of a row's hello profile, as text. */
const gcCell = (row) => (!row.gc ? '-' : row.gc.error ? 'failed' : `${(100 * row.gc.share).toFixed(1)}`);

/** The columns of a throughput table, as [header, (row, figures) => text, align]. */
function columns(results, section = SECTIONS[0], payload = { id: 'hello' }) {
  const spread = results.settings.rounds > 1;
  const cols = [
    ['row', (row) => row.name, 'left'],
    ['procs', (row) => (row.processes === null ? '-' : String(row.processes)), 'right'],
    ['req/s', (row, f) => int(f.rps), 'right'],
  ];
  if (spread) cols.push(['min-max', (row, f) => `${int(f.minRps)}-${int(f.maxRps)}`, 'right']);
  cols.push(
    [section.ratioHeader, (row, f) => ratio(f.vsNode), 'right'],
  );
  if (payload.id === 'hello' && results.rows.some((row) => row.gc)) cols.push(['GC %', (row) => gcCell(row), 'right']);
  if (payload.id === 'hello' && results.rows.some((row) => row.instructions)) cols.push(['kIr/req', (row) => instructionCell(row), 'right']);
  cols.push(
    ['p50 ms', (row, f) => num(f.p50Ms, 2), 'right'],
    ['p99 ms', (row, f) => num(f.p99Ms, 2), 'right'],
    ['peak RSS MiB', (row, f) => (f.hwm === null ? '-' : num(f.hwm)), 'right'],
    ['PSS MiB', (row, f) => (f.pss === null ? '-' : num(f.pss)), 'right'],
    ['serving RSS MiB', (row, f) => (f.servingHwm === null || f.servingHwm === undefined ? '-' : num(f.servingHwm)), 'right'],
    ['backend us/req', (row, f) => (f.backendUsPerReq === null ? '-' : num(f.backendUsPerReq)), 'right'],
  );
  if (section.id === 'nginx') cols.push(['nginx us/req', (row, f) => num(f.nginxUsPerReq), 'right']);
  cols.push(
    ['errors', (row, f) => f.errors, 'right'],
    ['other CPU%', (row, f) => num(f.maxOtherCpu, 0), 'right'],
  );
  return cols;
}

function tableCells(results, payload, section) {
  const cols = columns(results, section, payload);
  const rows = results.rows.filter((row) => row.byPayload[payload.id] && (row.section ?? 'nginx') === section.id);
  return { cols, body: rows.map((row) => cols.map(([, cell]) => cell(row, row.byPayload[payload.id]))) };
}

function textTable(results, payload, section) {
  const { cols, body } = tableCells(results, payload, section);
  const widths = cols.map(([header], i) => Math.max(header.length, ...body.map((cells) => cells[i].length)));
  const line = (cells) => cells.map((cell, i) => (cols[i][2] === 'left' ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
  return [line(cols.map(([header]) => header)), ...body.map(line)].join('\n');
}

function markdownTable(results, payload, section) {
  const { cols, body } = tableCells(results, payload, section);
  const header = `| ${cols.map(([h]) => h).join(' | ')} |`;
  const rule = `|${cols.map(([, , align]) => (align === 'left' ? '---' : '---:')).join('|')}|`;
  return [header, rule, ...body.map((cells) => `| ${cells.join(' | ')} |`)].join('\n');
}

function settingsLine(results) {
  const s = results.settings;
  return (
    `wrk -t${s.threads} -c${s.connections} -d${s.duration}s --latency per row and payload (direct HTTP rows: -t${s.directThreads}), after ${s.warmup}s of warm-up; ` +
    `${s.rounds > 1 ? `${s.rounds} rounds in rotating row order, median by req/s (p50/p99/CPU of the median run, errors summed)` : '1 round'}; ` +
    `one nginx, 1 worker process, access_log off`
  );
}

const LEGEND_LINES = [
  "procs: processes in the backend's tree, counted during the run (tsgi rows: `tsgi serve`'s master and the one worker that serves,",
  "the TypeScript app compiled at start by a helper process that has exited by then; PHP-FPM: its master and children).",
  'vs Node http: req/s over "Node http via proxy" for the same payload; vs raw node:http (direct section): over "raw node:http handler".',
  "peak RSS: sum over the tree of each process's VmHWM (peak resident set; pages shared between processes count once per process),",
  "read after the row's runs of that payload (so the 64 KiB figure is the peak over both payloads).",
  'PSS: proportional set size of the tree at that moment (every shared page split between the processes mapping it, also processes',
  'outside the tree such as other node processes on the machine).',
  "serving RSS: peak RSS (VmHWM) of the tree's process that used the most CPU (a `tsgi serve` worker, not its master), read as peak RSS is.",
  'us/req: CPU time per request of the backend tree and of nginx (steadier than req/s on a shared machine).',
  "GC %: in a separate run of the row under `node --cpu-prof` (warm-up, then one hello run), the `(garbage collector)` node's self",
  "time over all non-idle samples taken during that run, in the serving process's profile.",
  'kIr/req (--instructions): thousands of user-space instructions per hello request of the serving process, counted by callgrind',
  'in another run (bench/lib/instructions.mjs): the work per request, which the machine\'s load does not move as it moves req/s.',
  'errors: non-2xx responses and socket errors seen by wrk, plus [error] lines nginx logged ("N logged").',
  "other CPU%: the most CPU (percent of one core) that processes not of this bench, plus VM steal, used during one of the row's runs.",
];
const LEGEND = LEGEND_LINES.join(' ');

function goalLines(results) {
  return results.goals.map((goal) => `${goal.label}: ${goal.text}`);
}

/** Issue 11's summary block: goal, bound, measured ratio, PASS/MISS (GC shares of tsgi rows too); then the other rows' GC shares. */
function summaryLines(results) {
  const lines = results.summary.map((entry) => `${entry.verdict.padEnd(4)}  ${entry.label} ${entry.bound}: ${entry.detail}`);
  if (results.gcLine) lines.push(`info  GC share of CPU under the hello load, other Node rows: ${results.gcLine}`);
  return lines;
}

function streamLines(stream) {
  if (!stream) return [];
  if (stream.error) return [`streaming: FAILED: ${stream.error}`];
  const s = stream;
  return [
    `upload ${s.mib} MiB (chunked, fastcgi_request_buffering off): ${num(s.mib / s.up.seconds, 0)} MiB/s, byte-identical: ${s.upOk ? 'yes' : `NO (status ${s.up.status}, sent ${s.up.sent}, app says ${s.up.text.trim().slice(0, 200)})`}`,
    `download ${s.mib} MiB (fastcgi_buffering off): ${num(s.mib / s.down.seconds, 0)} MiB/s, byte-identical: ${s.downOk ? 'yes' : `NO (status ${s.down.status}, received ${s.down.received} of ${s.total}${s.down.complete ? '' : ', cut short'})`}`,
    `backend peak RSS: ${num(s.after?.hwm)} MiB over ${s.after?.processes ?? 'n/a'} processes (largest process ${num(s.after?.largestHwm)} MiB); before the transfers ${num(s.idle?.hwm)} MiB`,
    ...(s.floor
      ? [
          `floor (bench/apps/minimal-fastcgi-stream.mjs, the same transfers through the same kind of location): upload ${num(s.mib / s.floor.up.seconds, 0)} MiB/s, download ${num(s.mib / s.floor.down.seconds, 0)} MiB/s, byte-identical: ${s.floor.upOk && s.floor.downOk ? 'yes' : 'NO'}; peak RSS ${num(s.floor.after?.hwm)} MiB (one process), before the transfers ${num(s.floor.idle?.hwm)} MiB`,
        ]
      : []),
  ];
}

function cgiTable(cgi, markdown) {
  const base = cgi.variants.find((v) => v.name === 'node -e 0');
  const cols = ['variant', 'wall median ms', 'wall p90 ms', 'peak RSS MiB', 'wall vs node -e 0', 'RSS vs node -e 0'];
  const body = cgi.variants.map((v) => [
    v.name,
    num(v.wallMedian),
    num(v.wallP90),
    num(v.rssMedianMib),
    ratio(v.wallMedian / base.wallMedian),
    ratio(v.rssMedianMib / base.rssMedianMib),
  ]);
  if (markdown) {
    return [`| ${cols.join(' | ')} |`, `|---|${cols.slice(1).map(() => '---:').join('|')}|`, ...body.map((cells) => `| ${cells.join(' | ')} |`)].join('\n');
  }
  const widths = cols.map((header, i) => Math.max(header.length, ...body.map((cells) => cells[i].length)));
  const line = (cells) => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
  return [line(cols), ...body.map(line)].join('\n');
}

/**
 * The cgi-bin table (lib/cgi-bin.mjs's figures) as [header, cells per row]: req/s and backend CPU per request,
 * each with its ratio to fcgiwrap (the goal's anchor) and to the floor (bare Node spawn) of the same N.
 */
function cgiBinCells(cgiBin) {
  const spread = cgiBin.settings.rounds > 1;
  const cols = [
    'row', 'req/s', ...(spread ? ['min-max'] : []), 'vs fcgiwrap', 'vs floor', 'p50 ms', 'p99 ms',
    'backend us/req', 'CPU vs fcgiwrap', 'CPU vs floor', 'nginx us/req', 'errors', 'other CPU%',
  ];
  const body = cgiBin.rows.map((row) => [
    row.name,
    int(row.rps),
    ...(spread ? [`${int(row.minRps)}-${int(row.maxRps)}`] : []),
    ratio(row.vsFcgiwrap),
    ratio(row.vsFloor),
    num(row.p50Ms, 2),
    num(row.p99Ms, 2),
    num(row.backendUsPerReq, 0),
    ratio(row.cpuVsFcgiwrap),
    ratio(row.cpuVsFloor),
    num(row.nginxUsPerReq, 0),
    row.errors,
    num(row.maxOtherCpu, 0),
  ]);
  return { cols, body };
}

function cgiBinTitle(cgiBin) {
  const s = cgiBin.settings;
  return (
    `cgi-bin behind the same nginx: bench/apps/cgi-bin/hello.sh at /cgi-bin/hello.sh, wrk -t${s.threads} -c${s.connections} -d${s.seconds}s, ` +
    `${s.rounds > 1 ? `${s.rounds} rounds (the rows of each N in rotating order), median by req/s` : '1 round'}; ` +
    'backend us/req counts the scripts (CPU of the processes they were reaped by); ' +
    'floor: bench/apps/minimal-cgi-spawn.mjs, one bare child_process.spawn per request (the least a Node host can do), ' +
    "so 'vs floor' is how much of Node's ceiling a row reaches"
  );
}

/** The git-cgi table: per server and operation, the median time, each run, the server's CPU. */
function gitCgiCells(gitCgi) {
  const cols = ['server', 'clone s', 'clone runs', 'clone server CPU s', 'push s', 'push runs', 'push server CPU s'];
  const seconds = (ms) => (ms / 1000).toFixed(2);
  const body = gitCgi.servers.map((server) => [
    server.name,
    seconds(server.clone.median),
    server.clone.runs.map(seconds).join(' '),
    num(server.clone.cpuMedian, 2),
    seconds(server.push.median),
    server.push.runs.map(seconds).join(' '),
    num(server.push.cpuMedian, 2),
  ]);
  body.push(['tsgi / Apache', ratio(gitCgi.ratios.clone), '', '', ratio(gitCgi.ratios.push), '', '']);
  return { cols, body };
}

function gitCgiTitle(gitCgi) {
  return (
    `git over HTTP, ${gitCgi.mib} MiB repository of random blobs: \`git clone --bare\` and \`git -c http.postBuffer=65536 push\` (chunked) ` +
    `into an empty repository, through git http-backend under tsgi serve --cgi-bin and Apache mod_cgi; ${gitCgi.rounds} round${gitCgi.rounds === 1 ? '' : 's'}, ` +
    'medians; server CPU: the server process tree with git http-backend'
  );
}

function plainTable({ cols, body }) {
  const widths = cols.map((header, i) => Math.max(header.length, ...body.map((cells) => cells[i].length)));
  const line = (cells) => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
  return [line(cols), ...body.map(line)].join('\n');
}

function markdownPlainTable({ cols, body }) {
  return [`| ${cols.join(' | ')} |`, `|---|${cols.slice(1).map(() => '---:').join('|')}|`, ...body.map((cells) => `| ${cells.join(' | ')} |`)].join('\n');
}

/** The console report. */
export function textReport(results) {
  const out = [];
  if (results.quick) out.push('QUICK RUN (--quick): short smoke-test durations; the figures are not for comparison.');
  if (results.rows.length) out.push(settingsLine(results));
  out.push(`machine: ${results.machine.map(([label, value]) => `${label} ${value}`).join(', ')}`);
  for (const section of SECTIONS) {
    for (const payload of results.payloads) {
      if (!results.rows.some((row) => row.byPayload[payload.id] && (row.section ?? 'nginx') === section.id)) continue;
      out.push('', `${payload.label}, ${section.title}:`, textTable(results, payload, section));
    }
  }
  if (results.rows.length) out.push('', ...LEGEND_LINES);
  if (results.goals.length) out.push('', 'goals (hello world unless said otherwise):', ...goalLines(results).map((line) => `  ${line}`));
  if (results.stream) out.push('', `streaming through nginx to ${results.stream.name}:`, ...streamLines(results.stream).map((line) => `  ${line}`));
  if (results.cgi) out.push('', `CGI start-up (${results.cgi.runs} interleaved runs each, medians; peak RSS from GNU time):`, cgiTable(results.cgi, false));
  if (results.cgiBin) out.push('', `${cgiBinTitle(results.cgiBin)}:`, plainTable(cgiBinCells(results.cgiBin)));
  if (results.gitCgi) out.push('', `${gitCgiTitle(results.gitCgi)}:`, plainTable(gitCgiCells(results.gitCgi)));
  for (const line of results.errorNotes) out.push(line);
  for (const warning of results.warnings) out.push(`WARNING: ${warning}`);
  if (results.summary?.length) {
    out.push('', `SUMMARY: the goals of issues 11 and 12, ratios of this run (hello world decides PASS/MISS; both payloads shown)${results.warnings.length ? ' -- the machine was not quiet, see the WARNINGs' : ''}:`);
    out.push(...summaryLines(results).map((line) => `  ${line}`));
  }
  return `${out.join('\n')}\n`;
}

/** The markdown of bench/RESULTS.md. */
export function markdownReport(results) {
  const out = ['# tsgi benchmark results', ''];
  if (results.quick) {
    out.push(
      '> **QUICK RUN (`--quick`)**: short smoke-test durations on a shared machine. These figures only show that',
      '> every row runs; they are not for comparison. Rerun `npm run bench` on a quiet machine for real figures.',
      '',
    );
  }
  out.push(`Command: \`${results.command}\` (written by bench/run.mjs; rerun it to reproduce).`, '');
  out.push('## Machine', '', '| | |', '|---|---|', ...results.machine.map(([label, value]) => `| ${label} | ${value} |`), '');
  if (results.rows.length) {
    out.push('## Throughput', '', `${settingsLine(results)}.`, '');
    for (const section of SECTIONS) {
      for (const payload of results.payloads) {
        if (!results.rows.some((row) => row.byPayload[payload.id] && (row.section ?? 'nginx') === section.id)) continue;
        out.push(`### ${payload.label}, ${section.title}`, '', markdownTable(results, payload, section), '');
      }
    }
    out.push(LEGEND, '');
  }
  if (results.summary?.length) out.push('## Goals of issues 11 and 12', '', ...summaryLines(results).map((line) => `- ${line}`), '');
  if (results.goals.length) out.push('## Goals', '', ...goalLines(results).map((line) => `- ${line}`), '');
  if (results.stream) {
    out.push('## Streaming', '', `Through the same nginx to ${results.stream.name}, \`client_max_body_size 0\`, request and response buffering off:`, '');
    out.push(...streamLines(results.stream).map((line) => `- ${line}`), '');
  }
  if (results.cgi) {
    out.push('## CGI start-up', '', `${results.cgi.runs} interleaved runs of each (after ${results.cgi.warmup} warm-up round${results.cgi.warmup === 1 ? '' : 's'}), medians; wall time from spawn to exit, peak RSS from GNU time \`-f %M\`; every CGI response checked. tsgi\'s is cgi-bin/hello.ts built with \`tsgi build\`.`, '');
    out.push(cgiTable(results.cgi, true), '');
  }
  if (results.cgiBin) {
    out.push('## cgi-bin: fcgiwrap, tsgi serve --cgi-bin and the Node spawn floor', '', `${cgiBinTitle(results.cgiBin)}.`, '', markdownPlainTable(cgiBinCells(results.cgiBin)), '');
    out.push(...results.cgiBin.rows.map((row) => `- **${row.name}**: ${row.note}`), '');
  }
  if (results.gitCgi) out.push('## git over HTTP: tsgi serve --cgi-bin and Apache mod_cgi', '', `${gitCgiTitle(results.gitCgi)}.`, '', markdownPlainTable(gitCgiCells(results.gitCgi)), '');
  if (results.rows.length) {
    out.push('## Row configuration', '', 'Every backend answers "Hello, World!" at / and 64 KiB (bench/apps/payload.mjs) at /64k, text/plain with a Content-Length. nginx: response buffers 8 x 16k (the 64 KiB answer stays in memory), upstream keepalive where the protocol allows it.', '');
    for (const row of results.rows) out.push(`- **${row.name}**: ${row.note}`);
    out.push('');
  }
  if (results.errorNotes.length || results.warnings.length) {
    out.push('## Warnings and errors', '', ...results.errorNotes.map((line) => `- ${line}`), ...results.warnings.map((w) => `- WARNING: ${w}`), '');
  }
  return out.join('\n');
}
