import type { Router } from '../api/router.js';
import { boolValue, parseFilters } from '../api/query.js';
import { validateNetworkConnect, validateNetworkCreate, validateNetworkDisconnect, validateVolumeCreate } from '../api/schemas.js';
import { DaemonError } from '../errors.js';
import type { NetworkApi, VolumeApi } from '../engine/network-api.js';
import type { DaemonServices } from './context.js';

function networks(s: DaemonServices): NetworkApi {
  if (!s.networks) throw new DaemonError('NOT_IMPLEMENTED', 'not-implemented', 'networks are not available yet');
  return s.networks;
}

function volumes(s: DaemonServices): VolumeApi {
  if (!s.volumes) throw new DaemonError('NOT_IMPLEMENTED', 'not-implemented', 'volumes are not available yet');
  return s.volumes;
}

export function registerNetworkRoutes(router: Router, s: DaemonServices): void {
  router.add('GET', '/networks', async (ctx) => {
    ctx.sendJson(200, await networks(s).list(parseFilters(ctx.query.get('filters'))));
  });
  router.add('POST', '/networks/create', async (ctx) => {
    const body = await ctx.json(validateNetworkCreate, { required: true });
    const created = await networks(s).create(body);
    s.events.publish('network', 'create', created.Id, { name: body.Name, type: body.Driver || 'bridge' });
    ctx.sendJson(201, created);
  });
  router.add('POST', '/networks/prune', async (ctx) => {
    const deleted = await networks(s).prune(parseFilters(ctx.query.get('filters')));
    ctx.sendJson(200, { NetworksDeleted: deleted });
  });
  router.add('GET', '/networks/:id', async (ctx) => {
    ctx.sendJson(200, await networks(s).inspect(ctx.param('id')));
  });
  router.add('DELETE', '/networks/:id', async (ctx) => {
    const net = await networks(s).inspect(ctx.param('id'));
    await networks(s).remove(net.Id);
    s.events.publish('network', 'destroy', net.Id, { name: net.Name, type: net.Driver });
    ctx.noContent();
  });
  router.add('POST', '/networks/:id/connect', async (ctx) => {
    const body = await ctx.json(validateNetworkConnect, { required: true });
    const net = await networks(s).inspect(ctx.param('id'));
    const container = s.containers.store.get(body.Container);
    await networks(s).connect(net.Id, { ...body, Container: container.Id });
    s.events.publish('network', 'connect', net.Id, { name: net.Name, type: net.Driver, container: container.Id });
    ctx.send(200);
  });
  router.add('POST', '/networks/:id/disconnect', async (ctx) => {
    const body = await ctx.json(validateNetworkDisconnect, { required: true });
    const net = await networks(s).inspect(ctx.param('id'));
    const container = s.containers.store.get(body.Container);
    await networks(s).disconnect(net.Id, container.Id, body.Force ?? false);
    s.events.publish('network', 'disconnect', net.Id, { name: net.Name, type: net.Driver, container: container.Id });
    ctx.send(200);
  });

  router.add('GET', '/volumes', async (ctx) => {
    ctx.sendJson(200, { Volumes: await volumes(s).list(parseFilters(ctx.query.get('filters'))), Warnings: [] });
  });
  router.add('POST', '/volumes/create', async (ctx) => {
    const body = await ctx.json(validateVolumeCreate);
    const volume = await volumes(s).create(body);
    s.events.publish('volume', 'create', volume.Name, { driver: volume.Driver });
    ctx.sendJson(201, volume);
  });
  router.add('POST', '/volumes/prune', async (ctx) => {
    const result = await volumes(s).prune(parseFilters(ctx.query.get('filters')));
    for (const name of result.VolumesDeleted) s.events.publish('volume', 'destroy', name, { driver: 'local' });
    ctx.sendJson(200, result);
  });
  router.add('GET', '/volumes/:name', async (ctx) => {
    ctx.sendJson(200, await volumes(s).inspect(ctx.param('name')));
  });
  router.add('DELETE', '/volumes/:name', async (ctx) => {
    const name = ctx.param('name');
    await volumes(s).remove(name, boolValue(ctx.query, 'force'));
    s.events.publish('volume', 'destroy', name, { driver: 'local' });
    ctx.noContent();
  });
}
