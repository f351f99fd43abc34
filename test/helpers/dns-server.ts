import { createRequire } from 'node:module';

/**
 * A real DNS server on 127.0.0.1 (UDP, random port) answering TXT queries from an
 * in-memory map, so domain verification runs through node:dns exactly as in production.
 * Unknown names answer NXDOMAIN.
 */
type DnsQuestion = { name: string; type: number };
type DnsPacket = { questions: DnsQuestion[]; answers: unknown[]; header: { rcode?: number } };
type Dns2 = {
  Packet: { createResponseFromRequest(req: DnsPacket): DnsPacket; TYPE: { TXT: number }; CLASS: { IN: number } };
  createServer(opts: { udp: boolean; handle(req: DnsPacket, send: (res: DnsPacket) => void): void }): {
    listen(opts: { udp: { port: number; address: string } }): Promise<{ udp: { port: number } }>;
    close(): Promise<void>;
  };
};
const dns2 = createRequire(import.meta.url)('dns2') as Dns2;

export type TestDnsServer = {
  /** `127.0.0.1:<port>`, for DNS_SERVERS */
  address: string;
  /** TXT records by name (lower case, no trailing dot); mutate freely between requests */
  txt: Map<string, string[]>;
  queries: string[];
  close(): Promise<void>;
};

export async function startDnsServer(): Promise<TestDnsServer> {
  const txt = new Map<string, string[]>();
  const queries: string[] = [];
  const server = dns2.createServer({
    udp: true,
    handle(request, send) {
      const response = dns2.Packet.createResponseFromRequest(request);
      for (const q of request.questions) {
        const name = q.name.toLowerCase().replace(/\.$/, '');
        queries.push(name);
        const values = q.type === dns2.Packet.TYPE.TXT ? txt.get(name) : undefined;
        if (!values) {
          response.header.rcode = 3; // NXDOMAIN
          continue;
        }
        for (const data of values) response.answers.push({ name: q.name, type: dns2.Packet.TYPE.TXT, class: dns2.Packet.CLASS.IN, ttl: 60, data });
      }
      send(response);
    },
  });
  const addresses = await server.listen({ udp: { port: 0, address: '127.0.0.1' } });
  return { address: `127.0.0.1:${addresses.udp.port}`, txt, queries, close: () => server.close() };
}
