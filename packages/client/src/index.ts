export const packageName = '@berth/client';
