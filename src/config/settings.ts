import type { SettingsConfig } from './schema.js';
import { IpMatcher } from '../lib/ip-matcher.js';

/** Node-level settings compiled for the request path. */
export interface Settings {
  raw: SettingsConfig;
  trusted: IpMatcher;
  realIpHeader: string;
  realIpRecursive: boolean;
  serverTokens: boolean;
  viaHeader: boolean;
  serverHeader: boolean;
  upstreamLatencyHeader: boolean;
  proxyLatencyHeader: boolean;
  responseLatencyHeader: boolean;
  requestIdHeader: boolean;
  requestIdUpstream: boolean;
  accessLog: boolean;
  maxRequestBodyBuffer: number;
  maxResponseBodyBuffer: number;
  keepAlivePoolSize: number;
  keepAliveIdleTimeout: number;
}

export function compileSettings(raw: SettingsConfig): Settings {
  const h = new Set(raw.headers);
  const off = h.has('off');
  const on = (name: string, group: string) => !off && (h.has(name) || h.has(group));
  const up = new Set(raw.headers_upstream);
  return {
    raw,
    trusted: new IpMatcher(raw.trusted_ips),
    realIpHeader: raw.real_ip_header.toLowerCase(),
    realIpRecursive: raw.real_ip_recursive,
    serverTokens: on('server_tokens', 'server_tokens'),
    viaHeader: on('Via', 'server_tokens'),
    serverHeader: on('Server', 'server_tokens'),
    upstreamLatencyHeader: on('X-Gatehouse-Upstream-Latency', 'latency_tokens'),
    proxyLatencyHeader: on('X-Gatehouse-Proxy-Latency', 'latency_tokens'),
    responseLatencyHeader: on('X-Gatehouse-Response-Latency', 'latency_tokens'),
    requestIdHeader: on('X-Gatehouse-Request-Id', 'X-Gatehouse-Request-Id'),
    requestIdUpstream: !up.has('off') && up.has('X-Gatehouse-Request-Id'),
    accessLog: raw.access_log,
    maxRequestBodyBuffer: raw.max_request_body_buffer,
    maxResponseBodyBuffer: raw.max_response_body_buffer,
    keepAlivePoolSize: raw.upstream_keepalive_pool_size,
    keepAliveIdleTimeout: raw.upstream_keepalive_idle_timeout,
  };
}
