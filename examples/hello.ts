import type { App } from 'tsgi';

/** The example app: `npm start` serves it over HTTP; cgi-bin/ and the tests run the same kind of app. */
const app: App = (environ, startResponse) => {
  startResponse('200 OK', [['Content-Type', 'text/plain; charset=utf-8']]);
  return [`Hello from tsgi! You asked for ${environ.SCRIPT_NAME + environ.PATH_INFO || '/'}\n`];
};

export default app;
