// ConnectionReusingKubeConfig (src/k8s/client.ts): the operator's requests share kept-alive TLS
// connections, where client-node 1.4 opens one per request; credentials are still read per request.
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { ConnectionReusingKubeConfig, rawRequest, reusingConnections } from '../../src/k8s/client.js';
import { generateCertificates } from '../../src/webhook/certs.js';

describe('ConnectionReusingKubeConfig', () => {
  let server: Server;
  let url: string;
  let caData: string;
  let handshakes = 0;
  const authorizations: string[] = [];

  beforeAll(async () => {
    const bundle = await generateCertificates({ hosts: ['127.0.0.1'] });
    caData = Buffer.from(bundle.caCert).toString('base64');
    server = createServer({ cert: bundle.cert, key: bundle.key }, (req, res) => {
      authorizations.push(req.headers.authorization ?? '');
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ kind: 'NamespaceList', apiVersion: 'v1', metadata: {}, items: [] }));
    });
    server.on('secureConnection', () => handshakes++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  beforeEach(() => {
    handshakes = 0;
    authorizations.length = 0;
  });

  function load(kc: KubeConfig, token: string): KubeConfig {
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: url, caData, skipTLSVerify: false }],
      users: [{ name: 'u', token }],
      contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
      currentContext: 'ctx',
    });
    return kc;
  }

  it('sends generated-client calls and raw requests over one kept-alive connection', async () => {
    const kc = load(new ConnectionReusingKubeConfig(), 'token-1');
    const core = kc.makeApiClient(CoreV1Api);
    for (let i = 0; i < 10; i++) await core.listNamespace();
    for (let i = 0; i < 10; i++) await rawRequest(kc, { path: '/api/v1/namespaces' });
    expect(authorizations).toHaveLength(20);
    expect(handshakes).toBe(1);
  });

  it('still reads the credentials per request: a rotated token goes out on the same connection', async () => {
    const kc = load(new ConnectionReusingKubeConfig(), 'before');
    const core = kc.makeApiClient(CoreV1Api);
    await core.listNamespace();
    kc.users[0] = { ...kc.users[0]!, token: 'after' };
    await core.listNamespace();
    expect(authorizations).toEqual(['Bearer before', 'Bearer after']);
    expect(handshakes).toBe(1);
  });

  it('opens a new connection for other TLS material (a CA that changed)', async () => {
    const kc = load(new ConnectionReusingKubeConfig(), 't');
    await rawRequest(kc, { path: '/api/v1/namespaces' });
    // The same CA, spelt differently (PEM with a trailing newline): other bytes, so another agent.
    kc.clusters[0] = { ...kc.clusters[0]!, caData: Buffer.from(`${Buffer.from(caData, 'base64').toString()}\n`).toString('base64') };
    await rawRequest(kc, { path: '/api/v1/namespaces' });
    await rawRequest(kc, { path: '/api/v1/namespaces' });
    expect(handshakes).toBe(2);
  });

  it("is what client-node 1.4's own KubeConfig is not: one connection per request (if this fails, client-node reuses connections now and the class can go)", async () => {
    const kc = load(new KubeConfig(), 't');
    const core = kc.makeApiClient(CoreV1Api);
    for (let i = 0; i < 3; i++) await core.listNamespace();
    expect(handshakes).toBe(3);
  });

  it('reusingConnections copies a plain KubeConfig and keeps one that already reuses', async () => {
    const plain = load(new KubeConfig(), 'copied');
    const shared = reusingConnections(plain);
    expect(shared).toBeInstanceOf(ConnectionReusingKubeConfig);
    expect(reusingConnections(shared)).toBe(shared);
    for (let i = 0; i < 3; i++) await shared.makeApiClient(CoreV1Api).listNamespace();
    expect(authorizations).toEqual(['Bearer copied', 'Bearer copied', 'Bearer copied']);
    expect(handshakes).toBe(1);
  });
});
