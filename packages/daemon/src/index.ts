export const packageName = '@berth/daemon';
