/**
 * `privml mpc` network flags of the role commands (TLS material with role-bound certificates, the
 * idle timeout, fault injection for tests; checked by src/api/mpc-roles.ts) and `mpc certs`.
 */
import { type Command, Option } from 'commander';
import { makeCertificates, type RoleNetOptions } from '../api/mpc-roles.js';

/** TLS and liveness flags of `mpc dealer` and `mpc party`. */
export type RoleNetFlags = RoleNetOptions;

/** Add --tls-ca, --timeout and the hidden --fault to a role command (--tls-cert/--tls-key are declared by the command). */
export function addRoleNetFlags(c: Command): Command {
  return c
    .option('--tls-ca <file>', 'CA certificate (PEM): trust it for servers; a listener given it requires client certificates naming their role')
    .addOption(new Option('--fault <phase:signal>', 'testing: SIGKILL/SIGSTOP this process at a phase').hideHelp());
}

/** Register `mpc certs`. */
export function registerCerts(mpc: Command): void {
  mpc
    .command('certs')
    .description('make a test CA and role certificates (dealer, party 0, party 1) with openssl')
    .requiredOption('-o, --out <dir>', 'output directory (keys are written mode 0600)')
    .option('--days <n>', 'validity in days', (v) => Number(v), 30)
    .action(async (o: { out: string; days: number }) => {
      const files = await makeCertificates(o.out, o.days);
      process.stdout.write(`${files.join('\n')}\n`);
    });
}
