/**
 * Test certificates for mutual TLS: a CA and one certificate per role whose subject CN and SAN name
 * the role ("dealer", "party 0" / DNS "party0", "party 1" / DNS "party1"), made with the `openssl`
 * command (there is no certificate builder in Node). Keys are EC P-256, written mode 0600.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The three roles and the file stem of each certificate. */
export const CERT_ROLES = [
  { role: 'dealer', stem: 'dealer', dns: 'dealer' },
  { role: 'party 0', stem: 'party0', dns: 'party0' },
  { role: 'party 1', stem: 'party1', dns: 'party1' },
] as const;

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: Buffer };
    if (err.code === 'ENOENT')
      throw new Error('making certificates needs the openssl command, which is not on PATH (install OpenSSL, or bring your own CA and role certificates)');
    const why = err.stderr?.toString().trim().split('\n')[0] ?? err.message;
    throw new Error(`openssl ${args[0]} failed: ${why}`);
  }
}

/** Write ca.pem, ca-key.pem and <role>.pem/<role>-key.pem for the three roles into `dir`; returns the paths. */
export function makeRoleCertificates(dir: string, days = 30): string[] {
  mkdirSync(dir, { recursive: true });
  const out: string[] = [];
  const key = (name: string) => {
    // Create the file owner-only first: openssl keeps the mode of an existing file.
    writeFileSync(join(dir, name), '', { mode: 0o600 });
    chmodSync(join(dir, name), 0o600);
    openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', name], dir);
  };
  key('ca-key.pem');
  openssl(
    [
      'req',
      '-x509',
      '-new',
      '-key',
      'ca-key.pem',
      '-subj',
      '/CN=privml test CA',
      '-days',
      String(days),
      '-out',
      'ca.pem',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign',
    ],
    dir,
  );
  out.push(join(dir, 'ca.pem'), join(dir, 'ca-key.pem'));
  for (const r of CERT_ROLES) {
    key(`${r.stem}-key.pem`);
    const ext = `${r.stem}.ext`;
    writeFileSync(join(dir, ext), `subjectAltName=DNS:${r.dns}\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n`);
    openssl(['req', '-new', '-key', `${r.stem}-key.pem`, '-subj', `/CN=${r.role}`, '-out', `${r.stem}.csr`], dir);
    openssl(
      [
        'x509',
        '-req',
        '-in',
        `${r.stem}.csr`,
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca-key.pem',
        '-CAcreateserial',
        '-days',
        String(days),
        '-extfile',
        ext,
        '-out',
        `${r.stem}.pem`,
      ],
      dir,
    );
    rmSync(join(dir, `${r.stem}.csr`));
    rmSync(join(dir, ext));
    out.push(join(dir, `${r.stem}.pem`), join(dir, `${r.stem}-key.pem`));
  }
  rmSync(join(dir, 'ca.srl'), { force: true });
  return out;
}
