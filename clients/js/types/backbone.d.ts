import type { TidingsClient, LiveCollection as Core } from './index.js';

/** Backbone.Collection with a live core: `fetch()` opens it; remote changes arrive as add/change/remove. */
export interface LiveCollectionStatic {
  new (models?: any[], options?: { tidings?: TidingsClient; url?: string; [key: string]: any }): LiveCollectionInstance;
  extend(properties: object, classProperties?: object): LiveCollectionStatic;
}

export interface LiveCollectionInstance {
  /** The live core, once `fetch()` or `openLive()` opened it. */
  live: Core | null;
  openLive(): Core;
  closeLive(): void;
  /** Moves a record of a sorted collection (ids or models); a `sort` event at once, and back if refused. */
  move(idOrModel: any, place: { before: any } | { after: any } | { to: 'start' | 'end' }): Promise<any>;
  [key: string]: any;
}

export function liveBackbone(Backbone: any, options?: { client?: TidingsClient }): {
  LiveCollection: LiveCollectionStatic;
  LiveModel: any;
  liveSync: (method: string, model: any, options?: any) => Promise<any>;
};

/** Built on the global `Backbone` with the page's shared client; undefined when there is no global Backbone. */
export const LiveCollection: LiveCollectionStatic | undefined;
export const LiveModel: any;
