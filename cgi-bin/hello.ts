import { runWithCgi, type App } from 'tsgi';

const app: App = (_environ, startResponse) => {
  startResponse('200 OK', [['Content-Type', 'text/plain; charset=utf-8']]);
  return ['Hello from tsgi\n'];
};

void runWithCgi(app);
