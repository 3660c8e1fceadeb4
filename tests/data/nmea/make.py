import sys
def fmt(v):
    if isinstance(v,str): return v
    s='%.15g'%v
    if float(s)!=v: s='%.17g'%v
    if s.startswith('-') and set(s[1:])<=set('0.'): s=s[1:]
    return s
def dm(deg, minutes, neg=False):
    v = deg + minutes/60.0
    return -v if neg else v
stream=[]; exp=[]
def S(line, readings=(), end="\r\n"):
    stream.append(line+end)
    for f,v in readings: exp.append("%s %s"%(f,fmt(v)))
S("$GPGGA,,,,,,0,00,99.99,,,,,,*48", [("fix_quality",0),("satellites",0),("hdop",99.99)])
S("$GPRMC,,V,,,,,,,,,,N*53")
S("~~ line noise ~~")
S("$GPGGA,120000,9130.000,N,00000.000,E,1,05,1.0,10.0,M,,M,,*61")
S("$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47",
  [("latitude",dm(48,7.038)),("longitude",dm(11,31.000)),("fix_quality",1),("satellites",8),("hdop",0.9),("altitude",545.4)])
S("$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A",
  [("latitude",dm(48,7.038)),("longitude",dm(11,31.0)),("speed",22.4*1.852),("course",84.4),("time","1994-03-23T12:35:19Z")], end="\n")
S("$GPVTG,054.7,T,034.4,M,005.5,N,010.2,K*48", [("speed",10.2),("course",54.7)], end="\r")
S("$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*48")
S("$GNGGA,092750.000,5321.6802,N,00630.3372,W,1,8,1.03,61.7,M,55.2,M,,*68",
  [("latitude",dm(53,21.6802)),("longitude",dm(6,30.3372,True)),("fix_quality",1),("satellites",8),("hdop",1.03),("altitude",61.7)])
S("$GBRMC,235959.50,A,3351.0000,S,15112.0000,E,0.0,,311299,,,A*78",
  [("latitude",dm(33,51.0,True)),("longitude",dm(151,12.0)),("speed",0.0*1.852),("time","1999-12-31T23:59:59.500Z")])
S("$GPVTG,054.7,T,034.4,M,005.5,N,010.3,K*48")
S("$GPGGA,1235$GPVTG,054.7,T,034.4,M,005.5,N,010.2,K*48", [("speed",10.2),("course",54.7)])
S("$GPTXT,01,01,02," + "0123456789"*11 + "*00")
S("# comment in a captured log")
S("$GPVTG,120.0,T,,M,10.0,N,,K,A*11", [("speed",10.0*1.852),("course",120.0)])
open(sys.argv[1]+"/stream.txt","w",newline="").write("".join(stream))
open(sys.argv[1]+"/expected.txt","w").write("# field payload, one line per reading published (see README.md)\n"+"\n".join(exp)+"\n")
