/**
 * The one nginx of the bench: 1 worker process, access_log off, every temp path inside the run's temp dir,
 * one loopback `server` per row. Response buffers are large enough for the 64 KiB body in memory for every
 * protocol (no temp files). Upstreams keep connections alive where the protocol allows it (HTTP/1.1 and
 * FastCGI); nginx's scgi and uwsgi modules close the connection after every request.
 */

export const UPSTREAM_KEEPALIVE = 32;

/** Debian's fastcgi_params, written out so every FastCGI row gets exactly these. */
export const FASTCGI_PARAMS = `fastcgi_param  QUERY_STRING       $query_string;
fastcgi_param  REQUEST_METHOD     $request_method;
fastcgi_param  CONTENT_TYPE       $content_type;
fastcgi_param  CONTENT_LENGTH     $content_length;
fastcgi_param  SCRIPT_NAME        $fastcgi_script_name;
fastcgi_param  REQUEST_URI        $request_uri;
fastcgi_param  DOCUMENT_URI       $document_uri;
fastcgi_param  DOCUMENT_ROOT      $document_root;
fastcgi_param  SERVER_PROTOCOL    $server_protocol;
fastcgi_param  REQUEST_SCHEME     $scheme;
fastcgi_param  HTTPS              $https if_not_empty;
fastcgi_param  GATEWAY_INTERFACE  CGI/1.1;
fastcgi_param  SERVER_SOFTWARE    nginx/$nginx_version;
fastcgi_param  REMOTE_ADDR        $remote_addr;
fastcgi_param  REMOTE_PORT        $remote_port;
fastcgi_param  SERVER_ADDR        $server_addr;
fastcgi_param  SERVER_PORT        $server_port;
fastcgi_param  SERVER_NAME        $server_name;
fastcgi_param  REDIRECT_STATUS    200;
`;

/** Debian's scgi_params / uwsgi_params, written out (nginx adds SCGI's CONTENT_LENGTH itself). */
const GATEWAY_PARAMS = {
  scgi: ['REQUEST_METHOD $request_method', 'REQUEST_URI $request_uri', 'QUERY_STRING $query_string', 'CONTENT_TYPE $content_type',
    'DOCUMENT_URI $document_uri', 'DOCUMENT_ROOT $document_root', 'SCGI 1', 'SERVER_PROTOCOL $server_protocol', 'REQUEST_SCHEME $scheme',
    'HTTPS $https if_not_empty', 'REMOTE_ADDR $remote_addr', 'REMOTE_PORT $remote_port', 'SERVER_PORT $server_port', 'SERVER_NAME $server_name'],
  uwsgi: ['QUERY_STRING $query_string', 'REQUEST_METHOD $request_method', 'CONTENT_TYPE $content_type', 'CONTENT_LENGTH $content_length',
    'REQUEST_URI $request_uri', 'PATH_INFO $document_uri', 'DOCUMENT_ROOT $document_root', 'SERVER_PROTOCOL $server_protocol',
    'REQUEST_SCHEME $scheme', 'HTTPS $https if_not_empty', 'REMOTE_ADDR $remote_addr', 'REMOTE_PORT $remote_port',
    'SERVER_PORT $server_port', 'SERVER_NAME $server_name'],
};

export const fastcgiLocation = (upstream, extra = '') => `      include fastcgi_params;
${extra}      fastcgi_keep_conn on;
      fastcgi_pass ${upstream};
`;

/** proxy_pass over HTTP/1.1 with kept-alive connections, or (keepalive: false) nginx's default: HTTP/1.0, a connection per request. */
export const proxyLocation = (upstream, { keepalive = true } = {}) =>
  keepalive
    ? `      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_pass http://${upstream};
`
    : `      proxy_set_header Host $host;
      proxy_pass http://${upstream};
`;

/** scgi_pass / uwsgi_pass with Debian's params. */
export const gatewayLocation = (protocol, upstream) =>
  `${GATEWAY_PARAMS[protocol].map((param) => `      ${protocol}_param ${param};\n`).join('')}      ${protocol}_pass ${upstream};\n`;

/** The streaming location: nothing buffered in either direction, no body size cap. */
export const streamFastcgiLocation = (upstream) => `    location /stream/ {
      client_max_body_size 0;
      fastcgi_request_buffering off;
      fastcgi_buffering off;
      fastcgi_read_timeout 300s;
      fastcgi_send_timeout 300s;
${fastcgiLocation(upstream)}    }
`;

function upstreamBlock(row) {
  const keepalive = row.keepalive ? `    keepalive ${UPSTREAM_KEEPALIVE};\n` : '';
  return `  upstream ${row.upstream} {\n    server 127.0.0.1:${row.backendPort};\n${keepalive}  }\n`;
}

/** The whole nginx.conf for `rows` (each with nginxPort, upstream, backendPort, location, extraLocations). */
export function nginxConfig(dir, rows) {
  const user = process.getuid?.() === 0 ? 'user root;\n' : '';
  const upstreams = rows.filter((row) => row.upstream).map(upstreamBlock);
  const servers = rows.map(
    (row) => `  # ${row.name}
  server {
    listen 127.0.0.1:${row.nginxPort};
    server_name localhost;
${row.locations ?? `    location / {\n${row.location}    }\n`}${row.extraLocations ?? ''}  }
`,
  );
  const buffers = ['proxy', 'fastcgi', 'scgi', 'uwsgi']
    .map((module) => `  ${module}_buffer_size 16k;\n  ${module}_buffers 8 16k;\n  ${module}_temp_path ${dir}/nginx-tmp/${module};\n`)
    .join('');
  return `# Written by bench/run.mjs.
${user}worker_processes 1;
daemon off;
master_process on;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
worker_rlimit_nofile 16384;

events {
  worker_connections 8192;
}

http {
  access_log off;
  default_type text/plain;
  client_body_temp_path ${dir}/nginx-tmp/client_body;
  # The 64 KiB response fits in memory for every protocol (8 x 16k + 16k).
${buffers}
${upstreams.join('\n')}
${servers.join('\n')}}
`;
}
