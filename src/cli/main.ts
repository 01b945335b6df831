import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { GATEWAY_VERSION } from '../version.ts';
import { loadConfig } from '../config/index.ts';
import { ERRORS, isGatewayError } from '../errors/index.ts';
import { registerMessageCommands } from './message-commands.ts';
import { registerGatewayCommands } from './gateway-commands.ts';

/** How long `serve` waits for in-flight requests on shutdown before it gives up and exits 1. */
const SHUTDOWN_TIMEOUT_MS = 10_000;

/** Exit codes: 0 success, 1 failure, 2 wrong usage (commander's errors and GW_ERR_CLI_USAGE). */
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

export function createProgram(): Command {
  const program = new Command('seos-gateway')
    .description('Gateway between a records system and the Bulgarian e-government exchanges (SEOS, SSEV, eJournal)')
    .version(GATEWAY_VERSION)
    // Commander would call process.exit itself; with this its errors come back to main(), which picks the code.
    // Set before registerCommands: subcommands inherit it.
    .exitOverride();
  registerCommands(program);
  return program;
}

/** Adds every subcommand. Each feature registers its commands from its own file. */
export function registerCommands(program: Command): void {
  registerServeCommand(program);

  registerMessageCommands(program);
  registerGatewayCommands(program);
}

function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('start the gateway in the foreground; SIGINT or SIGTERM stops it cleanly')
    .option('-c, --config <file>', 'JSON config file (default: $SEOS_GATEWAY_CONFIG, else environment and defaults)')
    .action(async (options: { config?: string }) => {
      const config = loadConfig({ file: options.config });
      // Loaded here, not at the top: every other command starts faster without the server and its dependencies.
      const { buildServer } = await import('../api/server.ts');
      const { createGateway } = await import('../app/gateway.ts');
      if (!config.self) {
        // Not configured for an exchange yet: only the health endpoint, and a clear word on what is missing.
        process.stderr.write('внимание: липсва раздел "self" в конфигурацията; стартира се само /health (warning: no "self" section, only /health runs)\n');
        const app = await buildServer(config);
        const stopped = closeOnSignal(app);
        await app.listen({ host: config.host, port: config.port });
        await stopped;
        return;
      }
      const gateway = await createGateway(config, config.delivery.thread ? { deliveryThread: { configFile: options.config } } : {});
      // Handlers go in before listen so that a signal arriving during start-up is not lost.
      const stopped = closeOnSignal({ close: () => gateway.stop(), log: gateway.api.log });
      const { apiUrl, seosUrl } = await gateway.start();
      gateway.api.log.info({ apiUrl, seosUrl }, 'gateway started');
      await stopped;
    });
}

/** Resolves once a SIGINT/SIGTERM has closed the server (in-flight requests finish, new ones get 503). */
function closeOnSignal(app: { close(): Promise<unknown>; log: { info(o: object, m: string): void } }): Promise<void> {
  return new Promise((resolve, reject) => {
    let closing = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      // A terminal's Ctrl-C reaches both tsx and us, and tsx relays it again: later signals are ignored, the
      // timeout below is what bounds a stuck shutdown.
      if (closing) return;
      closing = true;
      app.log.info({ signal }, 'shutting down');
      const timer = setTimeout(() => {
        process.stderr.write(`error: shutdown took longer than ${SHUTDOWN_TIMEOUT_MS} ms\n`);
        process.exit(EXIT_FAILURE);
      }, SHUTDOWN_TIMEOUT_MS).unref();
      app.close().then(
        () => {
          clearTimeout(timer);
          process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
          resolve();
        },
        reject,
      );
    };
    process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  });
}

/** Runs the CLI and returns the exit code; errors are reported here, once, in Bulgarian and English. */
export async function main(argv: readonly string[] = process.argv): Promise<number> {
  try {
    await createProgram().parseAsync([...argv]);
    return 0;
  } catch (error) {
    return reportError(error);
  }
}

function reportError(error: unknown): number {
  if (error instanceof CommanderError) {
    // Commander has already printed its message, the help or the version.
    return error.exitCode === 0 ? 0 : EXIT_USAGE;
  }
  if (isGatewayError(error)) {
    const detail = error.detail ? ` ${error.detail}` : '';
    process.stderr.write(`грешка: ${error.descriptionBg}\nerror: ${error.code} ${ERRORS[error.code].en}${detail}\n`);
    return error.code === 'GW_ERR_CLI_USAGE' ? EXIT_USAGE : EXIT_FAILURE;
  }
  process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
  return EXIT_FAILURE;
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  process.exitCode = await main();
}
