/**
 * The container image's entry point: `docker run <image> <service>` runs one service of the product
 * (`publisher`, `aggregator`, `chat-gateway`, `lock-service`, `cache-service`), `docker run <image>
 * migrate` applies the migrations and exits. One image, built once, for every service.
 */
import { APPS } from '../start/apps.js';

const USAGE = `usage: <image> <${[...APPS.map((a) => a.name), 'migrate'].join('|')}>`;

const name = process.argv[2] ?? process.env.APP;
if (name === 'migrate') {
  await import('../migrate.js');
} else if (name !== undefined && APPS.some((app) => app.name === name)) {
  await import(`../../apps/${name}/src/main.js`);
} else {
  process.stderr.write(
    `${name === undefined ? 'no service named' : `unknown service "${name}"`}\n${USAGE}\n`,
  );
  process.exitCode = 2;
}
