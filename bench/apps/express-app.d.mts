import type { Express } from 'express';

/** Creates the Express hello world of bench/run.mjs (see express-app.mjs). */
export function createExpressHello(): Express;
