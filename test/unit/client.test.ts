// The client-node 1.4 helpers (src/k8s/client.ts): request options and error codes.
import { ApiException, HttpMethod, PatchStrategy, RequestContext } from '@kubernetes/client-node';
import { errorCode, MERGE_PATCH, requestOptions } from '../../src/k8s/client.js';

describe('request options for client-node 1.4', () => {
  it('adds a Content-Type middleware and an abort-signal middleware, appended to the configured ones', async () => {
    const signal = new AbortController().signal;
    const opts = requestOptions({ contentType: PatchStrategy.MergePatch, signal });
    expect(opts.middlewareMergeStrategy).toBe('append');
    expect(opts.middleware).toHaveLength(2);
    const ctx = new RequestContext('https://example.invalid/apis', HttpMethod.PATCH);
    for (const mw of opts.middleware!) await mw.pre(ctx).toPromise();
    expect(ctx.getHeaders()['Content-Type']).toBe('application/merge-patch+json');
    expect(ctx.getSignal()).toBe(signal);
    expect(MERGE_PATCH.middleware).toHaveLength(1);
  });

  it('errorCode reads ApiException, watch errors and Status bodies', () => {
    expect(errorCode(new ApiException(409, 'conflict', {}, {}))).toBe(409);
    expect(errorCode(Object.assign(new Error('Gone'), { statusCode: 410 }))).toBe(410);
    expect(errorCode({ body: { code: 404 } })).toBe(404);
    expect(errorCode(new Error('ECONNREFUSED'))).toBeUndefined();
  });
});
