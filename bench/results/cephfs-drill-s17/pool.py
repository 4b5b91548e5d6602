"""Pools tandem-drill runs by build: failover p50/p90/mean over every episode, and the
median of each phase (from bench/takeover_phases.py's .phases files beside the JSON).
Usage, in this directory: pool.py NAME=run1,run2 NAME2=run3,...  (session 17's tables)"""
import json,statistics as st,sys
def eps(r): return [f for f in json.load(open(f'./{r}.json'))['failovers'] if 'ms' in f]
def ph(r):
    out=[]
    for l in open(f'./{r}.phases'):
        p=l.split(); out.append((int(p[2]),int(p[4]),int(p[6]),int(p[8]),int(p[10]) if p[10].isdigit() else 0))
    return out
for arg in sys.argv[1:]:
    name,g=arg.split('='); g=g.split(',')
    ms=[f['ms'] for r in g for f in eps(r)]
    P=[x for r in g for x in ph(r)]
    print(name,'runs',len(g),'n',len(ms),'p50 %.0f p90 %.0f mean %.0f'%(st.median(ms),sorted(ms)[int(.9*len(ms))],st.mean(ms)),
      '| fault->lock %.0f lock->serving %.0f serving->accepted %.0f (medians)'%(st.median([p[1] for p in P]),st.median([p[2] for p in P]),st.median([p[3] for p in P])),
      '| lost',sum(json.load(open(f'./{r}.json'))['lost'] for r in g))
