#!/usr/bin/env node
// Interop test client for the MCP gateway, built on the official TypeScript
// MCP SDK (@modelcontextprotocol/sdk, version pinned in package.json).
//
// Usage:
//   node client.mjs --url URL --transport streamable|sse
//                   [--call TOOL] [--args JSON] [--list-only]
//                   [--header 'Name: value' ...] [--timeout-ms N]
//                   [--elicit-name NAME] [--sample TEXT]
//
// --elicit-name declares elicitation and accepts every form: a field "name"
// gets NAME, a field "ok" gets true. --sample declares sampling and answers
// every sampling request with TEXT.
//
// Connects, lists all tools (following nextCursor), optionally calls one tool,
// closes, and prints exactly one JSON object on stdout:
//   {"serverInfo": {...}, "protocolVersion": "...", "tools": ["name", ...],
//    "result": <CallToolResult or null>}
//
// Exit codes: 0 success, 1 any failure (message on stderr), 2 timeout.

import { parseArgs } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { ElicitRequestSchema, CreateMessageRequestSchema } from '@modelcontextprotocol/sdk/types.js';

const USAGE =
  "usage: node client.mjs --url URL --transport streamable|sse [--call TOOL] [--args JSON] " +
  "[--list-only] [--header 'Name: value' ...] [--timeout-ms N]";

const MAX_PAGES = 1000;

function describe(err) {
  if (!(err instanceof Error)) return String(err);
  let msg = `${err.name}: ${err.message}`;
  if (err.cause !== undefined) msg += ` (cause: ${describe(err.cause)})`;
  return msg;
}

function fail(err, code = 1) {
  process.stderr.write(`tsclient: ${describe(err)}\n`);
  process.exit(code);
}

function parseCli(argv) {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      url: { type: 'string' },
      transport: { type: 'string' },
      call: { type: 'string' },
      args: { type: 'string' },
      header: { type: 'string', multiple: true, default: [] },
      'list-only': { type: 'boolean', default: false },
      'elicit-name': { type: 'string' },
      sample: { type: 'string' },
      'timeout-ms': { type: 'string', default: '20000' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    process.exit(0);
  }
  if (!values.url) throw new Error(`--url is required\n${USAGE}`);
  const url = new URL(values.url);
  if (values.transport !== 'streamable' && values.transport !== 'sse') {
    throw new Error(`--transport must be "streamable" or "sse"\n${USAGE}`);
  }
  if (values['list-only'] && values.call !== undefined) {
    throw new Error('--list-only and --call are mutually exclusive');
  }
  if (values.args !== undefined && values.call === undefined) {
    throw new Error('--args requires --call');
  }
  let toolArgs = {};
  if (values.args !== undefined) {
    try {
      toolArgs = JSON.parse(values.args);
    } catch (e) {
      throw new Error(`--args: invalid JSON: ${e.message}`);
    }
    if (toolArgs === null || typeof toolArgs !== 'object' || Array.isArray(toolArgs)) {
      throw new Error('--args must be a JSON object');
    }
  }
  const timeoutMs = Number(values['timeout-ms']);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
    throw new Error('--timeout-ms must be a positive integer');
  }
  const headers = {};
  for (const h of values.header) {
    const i = h.indexOf(':');
    if (i <= 0) throw new Error(`bad --header ${JSON.stringify(h)}, want 'Name: value'`);
    const name = h.slice(0, i).trim();
    const value = h.slice(i + 1).trim();
    if (!name) throw new Error(`bad --header ${JSON.stringify(h)}, empty name`);
    // Repeated names are combined as HTTP allows (comma-separated).
    const key = Object.keys(headers).find((k) => k.toLowerCase() === name.toLowerCase()) ?? name;
    headers[key] = key in headers ? `${headers[key]}, ${value}` : value;
  }
  return {
    url,
    transport: values.transport,
    call: values['list-only'] ? undefined : values.call,
    toolArgs,
    headers,
    timeoutMs,
    elicitName: values['elicit-name'],
    sample: values.sample,
  };
}

function makeTransport(opts) {
  const requestInit = { headers: { ...opts.headers } };
  if (opts.transport === 'streamable') {
    return new StreamableHTTPClientTransport(opts.url, { requestInit });
  }
  // SSE: requestInit covers the POSTs (and, in this SDK, the stream GET too);
  // the eventSourceInit fetch adds the headers to the GET explicitly as well.
  return new SSEClientTransport(opts.url, {
    requestInit,
    eventSourceInit: {
      fetch: (input, init) => {
        const h = new Headers(init?.headers);
        for (const [k, v] of Object.entries(opts.headers)) h.set(k, v);
        return fetch(input, { ...init, headers: h });
      },
    },
  });
}

async function run(opts) {
  const transport = makeTransport(opts);

  // The Client does not expose the negotiated protocol version publicly;
  // capture it where the Client hands it to the transport after initialize.
  let protocolVersion;
  const origSet = transport.setProtocolVersion?.bind(transport);
  transport.setProtocolVersion = (v) => {
    protocolVersion = v;
    origSet?.(v);
  };

  const capabilities = {};
  if (opts.elicitName !== undefined) capabilities.elicitation = {};
  if (opts.sample !== undefined) capabilities.sampling = {};
  const client = new Client({ name: 'mcpgw-tsclient', version: '0.0.0' }, { capabilities });
  if (opts.elicitName !== undefined) {
    client.setRequestHandler(ElicitRequestSchema, async (req) => {
      const props = req.params.requestedSchema?.properties ?? {};
      const content = {};
      if ('name' in props) content.name = opts.elicitName;
      if ('ok' in props) content.ok = true;
      return { action: 'accept', content };
    });
  }
  if (opts.sample !== undefined) {
    client.setRequestHandler(CreateMessageRequestSchema, async () => ({
      role: 'assistant',
      model: 'tsclient',
      content: { type: 'text', text: opts.sample },
    }));
  }
  // Keep the SDK's own per-request timeout beyond ours so that a stall is
  // reported as a timeout (exit 2), not as an SDK error (exit 1).
  const reqOpts = { timeout: opts.timeoutMs + 5000 };

  await client.connect(transport, reqOpts);
  try {
    const serverInfo = client.getServerVersion() ?? null;
    protocolVersion ??= transport.protocolVersion;

    const tools = [];
    const seen = new Set();
    let cursor;
    for (let page = 0; ; page++) {
      if (page >= MAX_PAGES) throw new Error(`tools/list: more than ${MAX_PAGES} pages`);
      const res = await client.listTools(cursor === undefined ? {} : { cursor }, reqOpts);
      for (const t of res.tools) tools.push(t.name);
      cursor = res.nextCursor;
      if (cursor === undefined || cursor === null || cursor === '') break;
      if (seen.has(cursor)) throw new Error(`tools/list: repeated cursor ${JSON.stringify(cursor)}`);
      seen.add(cursor);
    }

    let result = null;
    if (opts.call !== undefined) {
      result = await client.callTool({ name: opts.call, arguments: opts.toolArgs }, undefined, reqOpts);
    }

    return { serverInfo, protocolVersion: protocolVersion ?? null, tools, result };
  } finally {
    if (transport instanceof StreamableHTTPClientTransport) {
      // Best effort: release the server-side session (HTTP DELETE).
      await transport.terminateSession().catch((e) => {
        process.stderr.write(`tsclient: warning: terminateSession: ${e?.message ?? e}\n`);
      });
    }
    await client.close();
  }
}

process.on('unhandledRejection', (e) => fail(e));

let opts;
try {
  opts = parseCli(process.argv.slice(2));
} catch (e) {
  fail(e);
}

const timer = setTimeout(() => {
  fail(new Error(`timed out after ${opts.timeoutMs}ms`), 2);
}, opts.timeoutMs);

run(opts).then(
  (out) => {
    clearTimeout(timer);
    // Exit explicitly once stdout is flushed, so a lingering socket can never
    // keep the process alive.
    process.stdout.write(JSON.stringify(out) + '\n', () => process.exit(0));
  },
  (e) => {
    clearTimeout(timer);
    fail(e);
  },
);
