import { runWithCgi } from 'tsgi';
import { conformanceApp } from 'tsgi/testing';

void runWithCgi(conformanceApp);
