import gzip,sys,statistics as S,collections
def load(fn):
    recs=[]
    for l in gzip.open(fn,'rt'):
        k,b,sm,*t=map(int,l.split()); k=0 if b<4 else (1 if b<100 else 2); recs.append((k,b,sm,t))
    recs.sort(key=lambda r:r[3][0])
    L=[];cur=[]
    for r in recs:
        if cur and r[3][0]-cur[-1][3][0]>15000: L.append(cur);cur=[]
        cur.append(r)
    L.append(cur)
    return [x for x in L if len(x)==124]
for fn in sys.argv[1:]:
    L=load(fn)
    rows=[]
    for x in L:
        ro=[r for r in x if r[0]==0]
        w0=min(r[3][2] for r in ro)  # router wait return
        rt=[r for r in x if r[0]==1]
        end=max(r[3][5] for r in x)
        rows.append(dict(dur=(end-w0)/1e3, r_start=S.median((r[3][0]-w0)/1e3 for r in ro), r_issue=S.median((r[3][1]-w0)/1e3 for r in ro),
           r_staged=max((r[3][3]-w0)/1e3 for r in ro), r_summed=max((r[3][4]-w0)/1e3 for r in ro), r_end=max((r[3][5]-w0)/1e3 for r in ro),
           route=max((r[3][2]-w0)/1e3 for r in rt), rt_wait=S.median((r[3][1]-w0)/1e3 for r in rt), sms=tuple(sorted(r[2] for r in ro))))
    ds=sorted(r['dur'] for r in rows)
    slow=[r for r in rows if r['dur']>S.median(ds)+3]; fast=[r for r in rows if r['dur']<=S.median(ds)+3]
    print(f"{fn}: {len(rows)} launches, slow {len(slow)} ({100*len(slow)/len(rows):.1f}%), median {S.median(ds):.2f}, slow median {S.median(r['dur'] for r in slow) if slow else 0:.2f}")
    for k in rows[0]:
        if k=='sms': continue
        print(f"   {k:10s} fast {S.median(r[k] for r in fast):7.2f}  slow {S.median(r[k] for r in slow) if slow else 0:7.2f}   slow max {max(r[k] for r in slow) if slow else 0:7.2f}")
    c=collections.Counter(s for r in slow for s in r['sms']); cf=collections.Counter(s for r in fast for s in r['sms'])
    print('   router SMs in slow', c.most_common(8)); print('   in fast', cf.most_common(8))
