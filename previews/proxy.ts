// The reverse proxy in front of service previews: <baseUrl>/<runId>/<repoId>/<rest> goes to the service's
// own port as /<rest>, streaming both ways (method, headers, body, status). The service learns where it is
// mounted from X-Forwarded-Prefix (and Host, X-Forwarded-Host, -Proto, -For), and redirects it answers
// with an absolute path are kept under the prefix, so a service written for "/" works behind it.
import http from 'node:http';

/** Headers that describe one connection, not the message: never forwarded (RFC 9110, 7.6.1). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

export interface ProxyTarget {
  port: number;
  /** `/<runId>/<repoId>`, no trailing slash. */
  prefix: string;
  /** The path and query the service is asked for, starting with "/". */
  path: string;
}

export function proxyToService(request: http.IncomingMessage, response: http.ServerResponse, target: ProxyTarget, agent: http.Agent, onUnreachable: (error: Error) => void): void {
  const upstream = http.request(
    { host: '127.0.0.1', port: target.port, method: request.method, path: target.path, headers: forwardedHeaders(request, target.prefix), agent },
    (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.statusMessage, answerHeaders(answer, target));
      answer.pipe(response);
      answer.on('error', () => response.destroy());
    },
  );
  upstream.on('error', (error) => {
    if (!response.headersSent) onUnreachable(error);
    else response.destroy();
  });
  // A reader that goes away (a closed tab, an aborted stream) ends the upstream request too.
  response.on('close', () => {
    if (!response.writableFinished) upstream.destroy();
  });
  request.pipe(upstream);
}

function forwardedHeaders(request: http.IncomingMessage, prefix: string): http.OutgoingHttpHeaders {
  const headers = withoutHopByHop(request.headers);
  const client = request.socket.remoteAddress ?? '';
  const forwardedFor = request.headers['x-forwarded-for'];
  headers['x-forwarded-for'] = forwardedFor ? `${String(forwardedFor)}, ${client}` : client;
  headers['x-forwarded-host'] = request.headers['x-forwarded-host'] ?? request.headers.host ?? '';
  headers['x-forwarded-proto'] = request.headers['x-forwarded-proto'] ?? 'http';
  headers['x-forwarded-prefix'] = prefix;
  return headers;
}

function answerHeaders(answer: http.IncomingMessage, target: ProxyTarget): http.OutgoingHttpHeaders {
  const headers = withoutHopByHop(answer.headers);
  const location = answer.headers.location;
  if (location !== undefined) headers.location = underPrefix(location, target);
  return headers;
}

/** `/login` and `http://127.0.0.1:<port>/login` become `<prefix>/login`; other addresses stay as they are. */
function underPrefix(location: string, target: ProxyTarget): string {
  for (const origin of [`http://127.0.0.1:${target.port}`, `http://localhost:${target.port}`]) {
    if (location === origin) return `${target.prefix}/`;
    if (location.startsWith(`${origin}/`)) return target.prefix + location.slice(origin.length);
  }
  if (location.startsWith('/') && !location.startsWith('//')) return target.prefix + location;
  return location;
}

function withoutHopByHop(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const named = String(headers.connection ?? '')
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .filter(Boolean);
  const kept: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name) && !named.includes(name)) kept[name] = value;
  }
  return kept;
}
