/**
 * The Apache of bench/run.mjs's git-cgi figure: git http-backend under mod_cgi, as git's documentation sets it
 * up (`ScriptAlias /git/ /usr/lib/git-core/git-http-backend/`, GIT_PROJECT_ROOT and GIT_HTTP_EXPORT_ALL by
 * SetEnv). mpm_prefork and mod_cgi as conf/apache-cgi.conf (the recipe test/e2e/cgi-apache.test.ts runs);
 * everything (logs, pid, mutexes) in the run's temp dir. Apache reads chunked request bodies itself and streams
 * them to the script without CONTENT_LENGTH, which is what git http-backend expects of a large push.
 */
export const APACHE_BIN = '/usr/sbin/apache2';
export const GIT_HTTP_BACKEND = '/usr/lib/git-core/git-http-backend';
const MODULES = '/usr/lib/apache2/modules';

/**
 * The account Apache runs CGI scripts as: Apache refuses root, so www-data when we are root (the repositories
 * it serves must then belong to it), else ourselves.
 */
export function apacheAccount() {
  const root = process.getuid?.() === 0;
  return root ? { user: 'www-data', group: 'www-data' } : { user: '#' + process.getuid(), group: '#' + process.getgid() };
}

/** The apache2 configuration serving the bare repositories under `projectRoot` at http://127.0.0.1:PORT/git/. */
export function apacheGitConfig({ dir, port, projectRoot }) {
  const { user, group } = apacheAccount();
  return `# Written by bench/run.mjs (git-cgi): git http-backend under Apache mod_cgi.
ServerRoot "${dir}"
Listen 127.0.0.1:${port}
ServerName 127.0.0.1
PidFile "${dir}/apache-git.pid"
DefaultRuntimeDir "${dir}"
User ${user}
Group ${group}
LoadModule mpm_prefork_module ${MODULES}/mod_mpm_prefork.so
LoadModule authz_core_module ${MODULES}/mod_authz_core.so
LoadModule alias_module ${MODULES}/mod_alias.so
LoadModule env_module ${MODULES}/mod_env.so
LoadModule cgi_module ${MODULES}/mod_cgi.so
StartServers 2
MinSpareServers 1
MaxSpareServers 4
MaxRequestWorkers 16
Timeout 300
KeepAlive On
ErrorLog "${dir}/apache-git-error.log"
LogLevel warn
# No access log: tsgi runs without one too.
<Directory />
    AllowOverride None
    Require all denied
</Directory>
# mod_cgi maps PATH_INFO under DocumentRoot for PATH_TRANSLATED (a lookup that logs a denial per request where
# access is denied): an empty, readable one.
DocumentRoot "${dir}/htdocs-apache"
<Directory "${dir}/htdocs-apache">
    Require all granted
</Directory>
SetEnv GIT_PROJECT_ROOT ${projectRoot}
SetEnv GIT_HTTP_EXPORT_ALL 1
ScriptAlias /git/ ${GIT_HTTP_BACKEND}/
<Directory "/usr/lib/git-core">
    Options +ExecCGI
    Require all granted
</Directory>
`;
}
