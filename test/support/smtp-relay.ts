/**
 * A small SMTP relay for tests that need mail delivery to fail for real: it speaks SMTP over TCP to
 * nodemailer, accepts (and drops) every message, except that RCPT TO an address in a refused domain
 * gets "550 5.7.1 … Relay access denied", the answer a relay gives for a domain it is not allowed to
 * deliver to. Unrefusing the domain is the operator's fix. Messages still reach /v1/dev/outbox, which
 * records what our delivery code handed over successfully.
 */
import net from 'node:net';

export interface SmtpRelay {
  url: string;
  refused: Set<string>;
  /** Every RCPT TO, accepted or not: `{ to, accepted }`. */
  log: { to: string; accepted: boolean }[];
  /** How many SMTP connections were opened to it. */
  connections(): number;
  close(): Promise<void>;
}

export async function startSmtpRelay(refusedDomains: string[] = []): Promise<SmtpRelay> {
  const refused = new Set(refusedDomains.map((d) => d.toLowerCase()));
  const log: SmtpRelay['log'] = [];
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((socket) => {
    connections += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffer = '';
    let inData = false;
    const say = (line: string) => socket.write(line + '\r\n');
    say('220 relay.test ESMTP');
    socket.on('data', (chunk) => {
      buffer += chunk.toString('latin1');
      for (;;) {
        if (inData) {
          const end = buffer.indexOf('\r\n.\r\n');
          if (end < 0) return;
          buffer = buffer.slice(end + 5);
          inData = false;
          say('250 2.0.0 queued');
          continue;
        }
        const eol = buffer.indexOf('\r\n');
        if (eol < 0) return;
        const line = buffer.slice(0, eol);
        buffer = buffer.slice(eol + 2);
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') socket.write('250-relay.test\r\n250-8BITMIME\r\n250 SIZE 10485760\r\n');
        else if (verb === 'HELO') say('250 relay.test');
        else if (verb === 'RCPT') {
          const to = (/<([^>]*)>/.exec(line)?.[1] ?? '').toLowerCase();
          const accepted = !refused.has(to.split('@')[1] ?? '');
          log.push({ to, accepted });
          say(accepted ? '250 2.1.5 ok' : `550 5.7.1 <${to}>: Relay access denied`);
        } else if (verb === 'DATA') {
          inData = true;
          say('354 end with <CRLF>.<CRLF>');
        } else if (verb === 'QUIT') {
          say('221 2.0.0 bye');
          socket.end();
        } else say('250 2.0.0 ok'); // MAIL, RSET, NOOP
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `smtp://127.0.0.1:${port}`,
    refused,
    log,
    connections: () => connections,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
