#!/usr/bin/env node
console.log('berth');
