/**
 * The little reference handling the client needs (which registry a name belongs to; docker's
 * fromImage/tag split), normalised like docker's distribution/reference: `busybox` →
 * docker.io/library/busybox:latest. Kept here rather than calling @berth/oci-spec's parser so the
 * client's import graph stays light (oci-spec compiles its JSON schemas when loaded).
 */
export interface SplitReference {
  domain: string;
  path: string;
  tag?: string;
  digest?: string;
}

export function splitReference(ref: string): SplitReference {
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  const slash = rest.indexOf('/');
  const first = slash < 0 ? '' : rest.slice(0, slash);
  let domain = 'docker.io';
  let path = rest;
  if (first && (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase())) {
    domain = first;
    path = rest.slice(slash + 1);
  }
  if (domain === 'index.docker.io') domain = 'docker.io';
  if (domain === 'docker.io' && !path.includes('/')) path = `library/${path}`;
  const out: SplitReference = { domain, path };
  if (tag !== undefined) out.tag = tag;
  if (digest !== undefined) out.digest = digest;
  if (tag === undefined && digest === undefined) out.tag = 'latest';
  return out;
}
